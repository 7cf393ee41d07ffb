/**
 * What libvirt XML has no element for, kept in libvirt's own `<metadata>` under virtkit's
 * namespace, which libvirt stores and gives back untouched:
 *
 *   <metadata>
 *     <virtkit:definition xmlns:virtkit="https://virtkit.dev/xmlns/domain/1">
 *       <virtkit:hostfwd nic='52:54:00:..' rule='tcp::2222-:22'/>
 *       <virtkit:boot entry='Debian' kernel='/boot/vmlinuz' initrd='...' cmdline='...'/>
 *       <virtkit:disk target='vda' id='root'/>
 *       <virtkit:host-shutdown action='suspend' timeout='60'/>
 *       <virtkit:vnc password='required'/>
 *     </virtkit:definition>
 *   </metadata>
 *
 * The importer reads this namespace (bound to the prefix `virtkit`) and only it; other
 * applications' metadata is reported as not kept.
 */
export const VirtkitNamespace = 'https://virtkit.dev/xmlns/domain/1';

/** Element names, as the importer sees them (prefix `virtkit`). */
export const VirtkitElements = {
  definition: 'virtkit:definition',
  hostfwd: 'virtkit:hostfwd',
  boot: 'virtkit:boot',
  disk: 'virtkit:disk',
  hostShutdown: 'virtkit:host-shutdown',
  vnc: 'virtkit:vnc',
} as const;
