/**
 * validateDefinition: a parsed document (any value) -> a normalized DomainDefinition, or a
 * `definition.invalid` error naming the first failing field. Normalizing is idempotent: a
 * normalized definition validates to an equal one.
 */
import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { KindGuard, type TSchema } from '@sinclair/typebox';
import { VirtkitError } from '../util/errors.js';
import { assignDeviceNames, bootDiskToId, checkDeviceNames } from './devices.js';
import { definitionError, schemaError } from './errors.js';
import { checkHostResourceRules, normalizeHostResources } from './host-resources.js';
import { inputChecker, normalizedChecker } from './input-schema.js';
import { annotations, DomainDefinitionSchema, type DomainDefinition } from './schema.js';
import { parseSize } from './size.js';
import { chosenVariant } from './variant.js';

export interface ValidateOptions {
  /**
   * Directory that relative host paths (boot.kernel, boot.initrd, disks[].source) are resolved
   * against. Without it relative paths stay as written.
   */
  baseDir?: string;
}

type Mutable = Record<string, unknown>;

function isRecord(value: unknown): value is Mutable {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A copy of `value` with every absent field that has a `default` filled in and the keys of
 * every mapping in schema order (so normalized definitions print the same way every time).
 */
function withDefaults(schema: TSchema, value: unknown): unknown {
  if (KindGuard.IsObject(schema) && isRecord(value)) {
    const out: Mutable = {};
    for (const [key, property] of Object.entries(schema.properties)) {
      const fallback = annotations(property).default;
      const given = value[key] === undefined ? copyPlain(fallback) : value[key];
      if (given !== undefined) out[key] = withDefaults(property, given);
    }
    return out;
  }
  if (KindGuard.IsUnion(schema)) {
    const variant = chosenVariant(schema, value);
    const chosen = variant === undefined ? undefined : schema.anyOf[variant];
    return chosen === undefined ? value : withDefaults(chosen, value);
  }
  if (KindGuard.IsArray(schema) && Array.isArray(value)) return value.map((item) => withDefaults(schema.items, item));
  return copyPlain(value);
}

/** Deep copy of JSON-like data (what a validated document holds); much cheaper than structuredClone. */
function copyPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyPlain);
  if (isRecord(value)) {
    const out: Mutable = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(out, key, { value: copyPlain(item), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

/** A locally administered-looking MAC in QEMU's 52:54:00 range. */
export function randomMac(): string {
  // randomUUID draws from a pooled random buffer, far cheaper than randomBytes(3) per call.
  const hex = randomUUID().slice(0, 6);
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

function resolveHostPath(path: string, baseDir: string | undefined): string {
  return baseDir === undefined || isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Rules that involve more than one field, checked after the schema and defaults. */
function checkCrossFieldRules(def: DomainDefinition): void {
  def.disks.forEach((disk, i) => {
    if ((disk.source === undefined) === (disk.volume === undefined)) {
      const got = disk.source === undefined ? 'neither' : 'both';
      throw definitionError(['disks', i], 'exactly-one', `must name exactly one of source and volume, got ${got}`, undefined, false);
    }
    if (disk.readonly && disk.bus === 'ide') {
      throw definitionError(['disks', i, 'readonly'], 'unsupported', 'is not supported on the ide bus (use virtio or scsi)', true);
    }
    if (disk.bus === 'scsi' && def.controllers.scsi === 'none') {
      throw definitionError(['disks', i, 'bus'], 'controller', 'needs the scsi controller, which controllers.scsi: none leaves out', disk.bus);
    }
  });
  checkDeviceNames(def);
  checkHostResourceRules(def);
  if (def.cpu === 'host' && def.accel === 'tcg') {
    // QEMU's `host` model exists only under KVM; `accel: auto` that lands on TCG runs it as `max`
    throw definitionError(['cpu'], 'needs-kvm', 'host needs KVM; with accel: tcg use max (or accel: auto, which runs host as max under TCG)', def.cpu);
  }
  if (def.maxvcpus !== undefined && def.maxvcpus < def.vcpus) {
    throw definitionError(['maxvcpus'], 'at-least-vcpus', `must be at least vcpus (${def.vcpus})`, def.maxvcpus);
  }

  const boot = def.boot;
  if (boot.loader === 'disk' && typeof boot.disk === 'number' && boot.disk >= def.disks.length) {
    const range = def.disks.length === 0 ? 'there are no disks' : `0 to ${def.disks.length - 1}`;
    throw definitionError(['boot', 'disk'], 'disk-index', `must be the index of a disk (${range})`, boot.disk);
  }
  if (boot.loader === 'disk' && typeof boot.disk === 'string' && !def.disks.some((disk) => disk.id === boot.disk)) {
    const ids = def.disks.length === 0 ? 'there are no disks' : def.disks.map((disk) => disk.id).join(', ');
    throw definitionError(['boot', 'disk'], 'disk-id', `must be the id of a disk (${ids})`, boot.disk);
  }
  if (boot.loader === 'guest') {
    if (boot.kernel !== undefined && boot.entry !== undefined) {
      throw definitionError(['boot', 'kernel'], 'exclusive', 'cannot be combined with boot.entry', boot.kernel);
    }
    if (boot.initrd !== undefined && boot.kernel === undefined) {
      throw definitionError(['boot', 'initrd'], 'needs-kernel', 'needs boot.kernel', boot.initrd);
    }
  }

  const macs = new Map<string, number>();
  def.nics.forEach((nic, i) => {
    if ((parseInt(nic.mac.slice(0, 2), 16) & 1) === 1) {
      throw definitionError(['nics', i, 'mac'], 'unicast', 'must be a unicast address (even first octet)', nic.mac);
    }
    const previous = macs.get(nic.mac);
    if (previous !== undefined) {
      throw definitionError(['nics', i, 'mac'], 'unique', `must differ from nics[${previous}].mac`, nic.mac);
    }
    macs.set(nic.mac, i);
    // vhost-net and tc limits act on a tap; QEMU's user networking has none.
    for (const field of ['vhost', 'bandwidth'] as const) {
      if (nic.network === 'user' && nic[field] !== undefined) {
        throw definitionError(['nics', i, field], 'network', 'applies only to a NIC on a virtkit network (network: NAME), not to network: user', undefined, false);
      }
    }
    nic.hostfwd.forEach((rule, j) => {
      const ports = [...rule.matchAll(/:([0-9]+)(?=-|$)/g)].map((m) => Number(m[1]));
      if (ports.some((port) => port < 1 || port > 65535)) {
        throw definitionError(['nics', i, 'hostfwd', j], 'port', 'ports must be 1 to 65535', rule);
      }
    });
  });
}

/**
 * Validate and normalize a parsed definition document.
 * @throws VirtkitError('definition.invalid') naming the first failing field path and rule.
 */
export function validateDefinition(document: unknown, options: ValidateOptions = {}): DomainDefinition {
  if (options.baseDir !== undefined && /[\n\r\0]/.test(options.baseDir)) {
    throw new VirtkitError('argument.invalid', `base directory must not contain newline or NUL, got ${JSON.stringify(options.baseDir)}`);
  }
  const checker = inputChecker();
  if (!checker.Check(document)) {
    const first = checker.Errors(document).First();
    throw first === undefined ? definitionError([], 'type', 'is not a valid definition', document) : schemaError(first, document);
  }
  const draft = withDefaults(DomainDefinitionSchema, document) as Mutable;
  draft['memory'] = parseSize(draft['memory'] as string | number);
  normalizeHostResources(draft, options.baseDir);
  draft['uuid'] = typeof draft['uuid'] === 'string' ? draft['uuid'].toLowerCase() : randomUUID();
  const nics = draft['nics'] as Mutable[];
  for (const nic of nics) if (typeof nic['mac'] === 'string') nic['mac'] = nic['mac'].toLowerCase();
  // Generated MACs avoid every MAC of the definition, given or generated.
  const usedMacs = new Set(nics.flatMap((nic) => (typeof nic['mac'] === 'string' ? [nic['mac']] : [])));
  for (const nic of nics) {
    if (typeof nic['mac'] === 'string') continue;
    let mac = randomMac();
    while (usedMacs.has(mac)) mac = randomMac();
    nic['mac'] = mac;
    usedMacs.add(mac);
  }
  const disks = draft['disks'] as Mutable[];
  assignDeviceNames(disks, nics);
  bootDiskToId(draft['boot'] as Mutable, disks);

  // Generated fields were added last: one more pass puts every key back in schema order.
  const def = withDefaults(DomainDefinitionSchema, draft) as DomainDefinition;
  checkCrossFieldRules(def);
  if (def.boot.loader === 'direct') {
    def.boot.kernel = resolveHostPath(def.boot.kernel, options.baseDir);
    if (def.boot.initrd !== undefined) def.boot.initrd = resolveHostPath(def.boot.initrd, options.baseDir);
  }
  for (const disk of def.disks) {
    if (disk.source !== undefined) disk.source = resolveHostPath(disk.source, options.baseDir);
  }

  if (!normalizedChecker().Check(def)) {
    const first = normalizedChecker().Errors(def).First();
    throw new VirtkitError('internal', `normalized definition does not match its schema at ${first?.path ?? '?'}: ${first?.message ?? '?'}`);
  }
  return def;
}
