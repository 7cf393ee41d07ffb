/**
 * The layer rule (docs/contributing.md#layers): which folder of src/ may import which, and
 * only through the other folder's face (an `index.ts`: the folder's own, or a sub-folder's
 * such as `qemu/command/index.ts`). Also where `node:child_process` may be used at all.
 * Tests (`*.test.ts`) are outside the rule: they may reach into any module they test.
 */
import { dirname, relative, resolve, sep } from 'node:path';

/**
 * Data flows down: each layer lists the layers it may import. `util` is the leaf. A layer
 * not listed as a key imports nothing but itself.
 */
export const LayerImports = {
  util: [],
  conf: ['util'],
  api: ['util', 'conf'],
  store: ['util'],
  // pool records are kept in the store (storage/pool/definitions.ts reads and writes them in a transaction)
  storage: ['util', 'conf', 'store'],
  guestfs: ['util', 'conf', 'storage'],
  guestkit: ['util', 'conf'],
  // Definitions people already have (libvirt domain XML, Xen xm/xl configs) read into and
  // written from the definition schema: pure text <-> data, so nothing below conf is needed.
  formats: ['util', 'conf'],
  qemu: ['util', 'conf', 'guestfs', 'storage'],
  client: ['util', 'api'],
  // Trace analyzers (simpletrace-style) over records of the API's shape, live from a client or read from a file.
  observability: ['util', 'api'],
  // Host networking (bridges, taps, nftables, dnsmasq): network definitions are conf-like data, nothing else is needed.
  net: ['util', 'conf'],
  daemon: ['util', 'conf', 'api', 'store', 'storage', 'guestfs', 'qemu', 'net'],
  cli: ['util', 'conf', 'api', 'client', 'storage', 'guestfs', 'guestkit', 'qemu', 'daemon', 'store', 'formats', 'net'],
  '.': ['util', 'conf', 'client'],
};

/** The files that start processes (STYLE.md: only the process layer and the tool wrappers). */
export const ChildProcessAllowed = [
  'src/qemu/process/spawn.ts',
  'src/storage/qemu-img.ts',
  'src/guestkit/modules.ts',
  'src/guestkit/vmlinux.ts',
  'src/cli/commands/definition.ts',
  // `virtkit ui` opens the web manager's URL with xdg-open, detached.
  'src/cli/commands/ui.ts',
  // Host networking runs ip, nft, tc and dnsmasq (net/host.ts is its only runner).
  'src/net/host.ts',
  // Save and restore copy QEMU's migration stream between its socket and the file with `cat`
  // (a copy through the event loop doubled a save's time; docs/save-restore.md).
  'src/qemu/driver/stream-copy.ts',
];

function layerOf(srcRelative) {
  const parts = srcRelative.split(sep);
  return parts.length === 1 ? '.' : parts[0];
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'layer order and faces between the folders of src/' },
    schema: [{ type: 'object', properties: { srcDir: { type: 'string' }, rootDir: { type: 'string' } }, additionalProperties: false }],
    messages: {
      upward: '{{from}}/ may not import {{to}}/ (allowed: {{allowed}}); see docs/contributing.md#layers',
      face: 'import {{to}}/ through its face ({{suggest}}), not {{file}}',
      childProcess: 'node:child_process is allowed only in: {{allowed}}',
    },
  },
  create(context) {
    const { srcDir, rootDir } = context.options[0];
    const file = context.filename;
    const rel = relative(srcDir, file);
    if (rel.startsWith('..') || file.endsWith('.test.ts')) return {};
    const fromLayer = layerOf(rel);
    const check = (node, source) => {
      if (typeof source !== 'string') return;
      if (source === 'node:child_process' || source === 'child_process') {
        const me = relative(rootDir, file).split(sep).join('/');
        if (!ChildProcessAllowed.includes(me)) context.report({ node, messageId: 'childProcess', data: { allowed: ChildProcessAllowed.join(', ') } });
        return;
      }
      if (!source.startsWith('.')) return;
      const target = relative(srcDir, resolve(dirname(file), source));
      if (target.startsWith('..')) return;
      const toLayer = layerOf(target);
      if (toLayer === fromLayer) return;
      const allowed = LayerImports[fromLayer] ?? [];
      if (!allowed.includes(toLayer)) {
        context.report({ node, messageId: 'upward', data: { from: fromLayer, to: toLayer, allowed: allowed.join(', ') || 'none' } });
        return;
      }
      // util/ is a folder of leaf helpers, not a layer with a face: any of its modules will do.
      if (toLayer !== 'util' && !/(^|\/)index\.js$/.test(target.split(sep).join('/'))) {
        context.report({ node, messageId: 'face', data: { to: toLayer, file: source, suggest: `${toLayer}/index.js or a sub-folder's index.js` } });
      }
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default { rules: { layers: rule } };
