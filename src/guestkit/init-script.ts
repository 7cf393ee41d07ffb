/**
 * The guest's /init (PID 1, run by busybox sh) and the power button handler busybox acpid
 * runs. Kept as plain text generators so tests can read exactly what the guest will do.
 */

/** Printed on ttyS0 once the guest can take commands; tests and `virtkit run --until-ready` wait for it. */
export const READY_MARKER = 'virtkit-guest: ready';

/**
 * Where busybox acpid looks for the power button's handler: it maps KEY_POWER from evdev to
 * the action `PWRF/00000080` and executes that path relative to its config dir /etc/acpi.
 */
export const POWER_BUTTON_HANDLER = '/etc/acpi/PWRF/00000080';

/** Where busybox udhcpc looks for the script that applies a lease (it has none built in). */
export const UDHCPC_SCRIPT = '/usr/share/udhcpc/default.script';

/**
 * The udhcpc script: on `bound`/`renew` it sets the address (`$ip/$mask`), the default routes
 * (`$router`) and /etc/resolv.conf (`$dns`, `$domain`); on `deconfig` it clears the address.
 * The values come from the DHCP server, so they are only ever passed as arguments, quoted.
 */
export function renderUdhcpcScript(): string {
  return [
    '#!/bin/sh',
    '# udhcpc calls this with the event as $1 and the lease in the environment.',
    'case "$1" in',
    '  deconfig)',
    '    ip -4 addr flush dev "$interface"',
    '    ip link set "$interface" up',
    '    ;;',
    '  bound|renew)',
    '    ip -4 addr flush dev "$interface"',
    '    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"',
    '    if [ -n "$router" ]; then',
    '      while ip route del default dev "$interface" 2>/dev/null; do :; done',
    '      for r in $router; do ip route add default via "$r" dev "$interface"; done',
    '    fi',
    '    : >/etc/resolv.conf',
    '    [ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf',
    '    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done',
    '    echo "virtkit-guest: lease $ip on $interface"',
    '    ;;',
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

export interface InitScriptOptions {
  hostname: string;
  /** Module paths inside the guest, in load order. */
  modules: readonly string[];
  /** Start acpid so the ACPI power button powers the guest off. */
  acpi: boolean;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

export function renderInitScript(options: InitScriptOptions): string {
  const lines = [
    '#!/bin/sh',
    '# virtkit guest kit: PID 1. Mounts the API filesystems, loads the drivers, reports',
    '# readiness on the serial console and keeps a shell there.',
    'export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM=vt100',
    '# busybox --install finds its own path through /proc/self/exe, so proc comes first.',
    '/bin/busybox mount -t proc -o nosuid,nodev,noexec proc /proc',
    '/bin/busybox --install -s',
    'mount -t devtmpfs -o nosuid devtmpfs /dev',
    'mount -t sysfs -o nosuid,nodev,noexec sysfs /sys',
    'mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run',
    'mkdir -p /dev/pts /run/acpid && mount -t devpts devpts /dev/pts',
    `hostname ${quote(options.hostname)}`,
    'for m in \\',
    ...options.modules.map((m) => `  ${quote(m)} \\`),
    '; do',
    '  insmod "$m" || echo "virtkit-guest: could not load $m"',
    'done',
    'ip link set lo up',
    '# With a NIC on QEMU user networking (slirp), take the address its DHCP server would',
    '# hand out, without waiting for DHCP: port forwards work as soon as the guest is ready.',
    '# virtkit.net=dhcp on the kernel command line (a NIC on a virtkit network, whose dnsmasq',
    '# leases another subnet) asks udhcpc for a lease instead, in the background, applied by',
    `# ${UDHCPC_SCRIPT}.`,
    '# virtkit.hostname=NAME on the kernel command line names this guest (and its DHCP requests).',
    'for arg in $(cat /proc/cmdline); do',
    '  case "$arg" in virtkit.hostname=?*) hostname "${arg#virtkit.hostname=}" ;; esac',
    'done',
    'if [ -e /sys/class/net/eth0 ]; then',
    '  ip link set eth0 up',
    '  case " $(cat /proc/cmdline) " in',
    '    *" virtkit.net=dhcp "*)',
    `      udhcpc -b -i eth0 -x hostname:"$(hostname)" -s ${UDHCPC_SCRIPT} >/dev/null 2>&1 || echo "virtkit-guest: udhcpc did not start"`,
    '      ;;',
    '    *)',
    '      ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2',
    '      echo nameserver 10.0.2.3 >/etc/resolv.conf',
    '      ;;',
    '  esac',
    'fi',
  ];
  lines.push(...renderSharedFolderMounts());
  if (options.acpi) lines.push(...renderAcpidStart());
  lines.push(
    `echo ${quote(READY_MARKER)}`,
    'cd /root',
    '# The shell gets ttyS0 as its controlling terminal (cttyhack), so job control and Ctrl-C',
    '# work; when it exits another one starts, so the console never goes dead.',
    'while true; do',
    '  setsid cttyhack sh -l',
    'done',
    '',
  );
  return lines.join('\n');
}

/** How long /init waits, at most, for acpid to hold the input devices before it reports ready. */
export const ACPID_WAIT_TENTHS = 100;

/**
 * Starts acpid and waits until it holds every /dev/input/event* device. acpid forks into the
 * background first and opens the devices after that, so when its command returns nobody
 * listens yet: a power-button press in between is lost (evdev queues events only for readers
 * that have the device open). The ready marker promises that the button works, so it waits
 * for acpid's open file descriptors to name all the event devices, checked every 0.1 s and
 * bounded (a guest whose acpid never gets there still reports ready, after the bound).
 */
export function renderAcpidStart(): string[] {
  return [
    '# acpid opens /dev/input/event0, event1... after it has forked into the background: wait',
    '# until it holds them all, so a power-button press right after the ready marker is heard.',
    'acpid -c /etc/acpi -l /run/acpid/acpid.log -p /run/acpid/acpid.pid',
    'events=$(ls /dev/input 2>/dev/null | grep -c "^event")',
    'tries=0',
    `while [ "$tries" -lt ${ACPID_WAIT_TENTHS} ]; do`,
    '  pid=$(cat /run/acpid/acpid.pid 2>/dev/null || pidof acpid)',
    '  held=$(ls -l /proc/${pid:-none}/fd 2>/dev/null | grep -c "/dev/input/event")',
    '  [ -n "$pid" ] && [ "$held" -ge "$events" ] && break',
    '  sleep 0.1',
    '  tries=$((tries + 1))',
    'done',
    `[ "$tries" -lt ${ACPID_WAIT_TENTHS} ] || echo "virtkit-guest: acpid does not hold the input devices; the power button may be missed"`,
  ];
}

/**
 * Mounts the shared folders the kernel command line names: `virtkit.mount=TAG` (at /mnt/TAG)
 * or `virtkit.mount=TAG:DIR`, as often as needed. virtio-fs first, then 9p over virtio: the
 * guest does not know which one the host chose (docs/shared-folders.md). The kernel keeps a
 * dotted parameter it does not know for a module of that name and passes it to nobody, so it
 * is read back from /proc/cmdline.
 */
export function renderSharedFolderMounts(): string[] {
  return [
    '# shared folders named on the kernel command line: virtkit.mount=TAG[:DIR]',
    'for arg in $(cat /proc/cmdline); do',
    '  case "$arg" in',
    '    virtkit.mount=*)',
    '      spec=${arg#virtkit.mount=}; tag=${spec%%:*}; dir=${spec#*:}',
    '      [ "$dir" = "$spec" ] && dir=/mnt/$tag',
    '      mkdir -p "$dir"',
    '      mount -t virtiofs "$tag" "$dir" 2>/dev/null || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$tag" "$dir" 2>/dev/null \\',
    '        || echo "virtkit-guest: could not mount shared folder $tag on $dir"',
    '      ;;',
    '  esac',
    'done',
  ];
}

export function renderPowerButtonHandler(): string {
  return ['#!/bin/sh', 'echo "virtkit-guest: power button pressed, powering off" >/dev/console', 'sync', 'poweroff -f', ''].join('\n');
}

/** Login profile for the serial shell: a prompt that shows the host name. */
export function renderProfile(): string {
  return ["PS1='\\h:\\w\\$ '", 'export PS1', ''].join('\n');
}
