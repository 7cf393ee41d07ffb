/**
 * Who is calling and what they may do. Each accepted connection is identified once, from the
 * kernel (SO_PEERCRED: uid, gid, pid), and given its access classes by the policy then; every
 * request is checked against the access class its method (or stream) declares, and write and
 * admin calls, like every refusal, go to the audit log. docs/security.md describes the model.
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { AccessClasses, StreamSpecs, type AccessClass, type StreamName } from '../api/index.js';
import type { DefineBody } from '../api/index.js';
import { parseDefinition } from '../conf/index.js';
import type { Origin } from '../store/index.js';
import { VirtkitError, isVirtkitError } from '../util/errors.js';
import type { AuditLog } from './audit-log.js';
import { GroupDatabase } from './groups.js';
import { hostPathProblem } from './host-paths.js';
import { peerCredentials } from './peer-cred.js';

export interface Caller {
  /** Per-connection id (`c1`, `c2`, ...), as snoop shows it. */
  readonly client: string;
  /** From the kernel; absent when it could not tell (then the caller holds no class). */
  readonly uid?: number;
  readonly gid?: number;
  readonly pid?: number;
  /**
   * The classes the policy gave the connection when it was identified. Membership is decided
   * once per connection: a user removed from a group keeps what an open connection had until
   * it closes, and a user added gets the new classes on the next connection.
   */
  readonly classes?: readonly AccessClass[];
  /** The kernel gid and the /etc/group groups, as of the same moment (for host path checks). */
  readonly gids?: readonly number[];
}

const DaemonUid = process.getuid?.() ?? 0;

const MemberClasses: readonly AccessClass[] = ['read', 'write'];
const NoClasses: readonly AccessClass[] = [];

export interface AccessPolicyOptions {
  /** `--socket-group`: its members (kernel gid or listed in /etc/group) hold read and write. */
  socketGid?: number;
  /** `--admin-group`: its members hold every class. */
  adminGid?: number;
  /** The user whose calls are the daemon's own (default: this process's uid). */
  daemonUid?: number;
  /** Where supplementary groups come from (default: /etc/passwd and /etc/group). */
  groups?: GroupDatabase;
}

/**
 * The access policy: root and the daemon's own user hold every class; members of the admin
 * group too; members of the socket group hold read and write; anyone else holds nothing. A
 * caller the kernel could not identify holds nothing.
 */
export class AccessPolicy {
  readonly socketGid: number | undefined;
  readonly adminGid: number | undefined;
  private readonly daemonUid: number;
  private readonly groups: GroupDatabase;

  constructor(opts: AccessPolicyOptions = {}) {
    this.socketGid = opts.socketGid;
    this.adminGid = opts.adminGid;
    this.daemonUid = opts.daemonUid ?? DaemonUid;
    this.groups = opts.groups ?? new GroupDatabase();
  }

  /** The caller's gid and supplementary groups. */
  gidsOf(cred: { uid: number; gid: number }): readonly number[] {
    return [...new Set([cred.gid, ...this.groups.supplementaryGids(cred.uid)])];
  }

  classesOf(cred: { uid?: number | undefined; gid?: number | undefined }): readonly AccessClass[] {
    const { uid, gid } = cred;
    if (uid === undefined) return NoClasses;
    if (uid === 0 || uid === this.daemonUid) return AccessClasses;
    if (this.adminGid === undefined && this.socketGid === undefined) return NoClasses;
    if (this.adminGid !== undefined && this.groups.isMember({ uid, gid }, this.adminGid)) return AccessClasses;
    if (this.socketGid !== undefined && this.groups.isMember({ uid, gid }, this.socketGid)) return MemberClasses;
    return NoClasses;
  }
}

/** The policy without groups: root and the daemon's own user only. */
export const OwnerOnlyPolicy = new AccessPolicy();

/**
 * The classes a caller holds: those its connection was given when it was identified, else
 * what `policy` (by default root and the daemon's user only) gives its credentials now.
 */
export function accessClassesOf(caller: Caller, policy: AccessPolicy = OwnerOnlyPolicy): readonly AccessClass[] {
  return caller.classes ?? policy.classesOf(caller);
}

/**
 * The class a definition needs from `caller` (asked only of callers without `admin`): `admin`
 * when it passes arguments or environment to QEMU, or names a host file the caller may not have
 * QEMU open (`host-paths.ts`: a disk `source`, the kernel, the initrd); else `write`.
 */
export function definitionAccess(body: DefineBody, caller: Caller): AccessClass {
  let def: ReturnType<typeof parseDefinition>;
  try {
    def = parseDefinition(body.text, { ...(body.format ? { format: body.format } : {}), ...(body.baseDir ? { baseDir: body.baseDir } : {}) });
  } catch {
    // The same parser refuses it in the handler (definition.invalid): nothing to escalate.
    return 'write';
  }
  if (def.qemu.args.length > 0 || Object.keys(def.qemu.env).length > 0) return 'admin';
  return hostPathsProblem(def, caller) === undefined ? 'write' : 'admin';
}

/** Why `caller` may not name the definition's host files, or `undefined` when it may. */
export function hostPathsProblem(def: ReturnType<typeof parseDefinition>, caller: Caller): string | undefined {
  if (caller.uid === undefined) return 'an unidentified caller names no host file';
  const who = { uid: caller.uid, gids: new Set(caller.gids ?? (caller.gid !== undefined ? [caller.gid] : [])) };
  const trusted = new Set([0, DaemonUid]);
  const paths: string[] = [];
  if (def.boot.loader === 'direct') paths.push(def.boot.kernel, ...(def.boot.initrd !== undefined ? [def.boot.initrd] : []));
  for (const [i, disk] of def.disks.entries()) {
    if (disk.source === undefined) continue;
    if (!disk.readonly) return `disks[${i}].source ${disk.source} would be written by QEMU: a writable disk of a non-admin is a pool volume`;
    paths.push(disk.source);
  }
  for (const path of paths) {
    const problem = hostPathProblem(path, who, trusted);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

export function originOf(caller: Caller): Origin {
  return {
    client: caller.client,
    ...(caller.pid !== undefined ? { pid: caller.pid } : {}),
    ...(caller.uid !== undefined ? { uid: caller.uid } : {}),
  };
}

/** What an audit line or a refusal says about the caller. */
function who(caller: Caller): { uid: number | null; gid: number | null; pid: number | null } {
  return { uid: caller.uid ?? null, gid: caller.gid ?? null, pid: caller.pid ?? null };
}

/** The controls of the servers this process runs, by accepted socket (stream code finds its own). */
const controlOfSocket = new WeakMap<Socket, AccessControl>();

export class AccessControl {
  private readonly callers = new WeakMap<object, Caller>();
  private nextClient = 1;

  constructor(
    private readonly audit: AuditLog | undefined,
    private readonly onAuditFailure: (err: unknown) => void = () => undefined,
    private readonly policy: AccessPolicy = OwnerOnlyPolicy,
  ) {}

  /** Identifies an accepted connection and gives it its classes; call on the server's 'connection' event. */
  identify(socket: Socket): Caller {
    const client = `c${this.nextClient++}`;
    const cred = peerCredentials(socket);
    const classes = cred ? this.policy.classesOf(cred) : NoClasses;
    // The groups matter only to the host path check of callers without admin.
    const gids = cred && !classes.includes('admin') ? { gids: this.policy.gidsOf(cred) } : {};
    const caller: Caller = { client, ...cred, classes, ...gids };
    this.callers.set(socket, caller);
    controlOfSocket.set(socket, this);
    return caller;
  }

  /**
   * The caller behind a request. A request whose socket is no network socket at all was made
   * inside this process (fastify's `inject`): that is the daemon itself.
   */
  callerOf(raw: IncomingMessage): Caller {
    const socket: unknown = raw.socket;
    const known = typeof socket === 'object' && socket !== null ? this.callers.get(socket) : undefined;
    if (known) return known;
    if (socket instanceof Socket) return this.identify(socket);
    return { client: 'daemon', uid: DaemonUid, gid: process.getgid?.() ?? 0, pid: process.pid, classes: AccessClasses };
  }

  /**
   * Throws `access.denied` unless the caller holds `access`; a refusal is audited. `what` is the
   * method or stream name.
   */
  authorize(caller: Caller, access: AccessClass, what: string, domain?: string): void {
    if (accessClassesOf(caller, this.policy).includes(access)) return;
    const err = new VirtkitError('access.denied',
      `${what} needs ${access} access, which ${caller.uid === undefined ? 'an unidentified caller' : `uid ${caller.uid}`} does not have`,
      { access, method: what, ...who(caller) });
    this.record(caller, what, access, domain, err);
    throw err;
  }

  /** Appends the audit line of a write or admin call (reads are not audited, refusals always are). */
  record(caller: Caller, what: string, access: AccessClass, domain: string | undefined, error?: unknown): void {
    if (!this.audit || (access === 'read' && !isVirtkitError(error, 'access.denied'))) return;
    try {
      this.audit.record({
        ...who(caller), method: what, access, ...(domain !== undefined ? { domain } : {}),
        outcome: error === undefined ? 'ok' : 'error',
        ...(error !== undefined ? { code: isVirtkitError(error) ? error.code : 'internal' } : {}),
      });
    } catch (err) {
      this.onAuditFailure(err);
    }
  }

  /**
   * For a stream opened outside the method table (console, events, snoop, volume contents):
   * authorizes the request's caller for the stream's class and audits the opening of a write
   * or admin stream. Returns the caller.
   */
  authorizeStream(raw: IncomingMessage, stream: StreamName, domain?: string): Caller {
    const caller = this.callerOf(raw);
    const { access } = StreamSpecs[stream];
    this.authorize(caller, access, stream, domain);
    this.record(caller, stream, access, domain);
    return caller;
  }
}

/**
 * `AccessControl.authorizeStream` for code that has the request but not the control: the
 * control that accepted the request's connection decides. Throws `access.denied`.
 */
export function authorizeStream(raw: IncomingMessage, stream: StreamName, domain?: string): Caller {
  const socket: unknown = raw.socket;
  const control = socket instanceof Socket ? controlOfSocket.get(socket) : undefined;
  if (!control) {
    throw new VirtkitError('internal', `no access control for the connection of ${raw.method ?? ''} ${raw.url ?? ''}`);
  }
  return control.authorizeStream(raw, stream, domain);
}
