/**
 * Local access control by group, against a real daemon (`--socket-group`, `--admin-group`),
 * real users and a real guest (docs/security.md). Runs as root, as CI does: the test creates
 * two groups and three users with groupadd/useradd and removes them afterwards, because the
 * policy reads supplementary groups from /etc/group and only real entries prove that path.
 * Commands run as those users through `setpriv --reuid --regid --init-groups` (what a login
 * gives them) or with explicit `--groups` to tell the kernel's view apart from the daemon's.
 *
 * It also checks the file modes the daemon promises, on a state dir that an older virtkit
 * left with 0644 files and a 0755 directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import type { AuditRecord } from '../../src/daemon/audit-log.js';
import { testGuestDefinition } from '../helpers/guests.js';
import { letOthersTraverse, trustedTempDir } from '../helpers/trusted-dir.js';
import { CliPath, waitFor, type CliResult } from './daemon-harness.js';
import { connect } from '../../src/client/index.js';
import { qemuProcessesUnder } from '../../src/daemon/reconcile.js';

const isRoot = process.getuid?.() === 0;
const haveUserTools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v useradd && command -v groupadd && command -v setpriv'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const Denied = exitCodeFor('access.denied');
const Unreachable = exitCodeFor('connection.failed');
/** Short and unique per run: group and user names are at most 32 characters. */
const tag = `vk${process.pid.toString(36)}`;
const MembersGroup = `${tag}-members`;
const AdminsGroup = `${tag}-admins`;
/** In no group of ours. */
const Outsider = `${tag}-out`;
/** In the socket group through /etc/group. */
const Member = `${tag}-mem`;
/** In both groups through /etc/group. */
const Admin = `${tag}-adm`;

function idOf(kind: 'user' | 'group', name: string): number {
  return Number(execFileSync('getent', [kind === 'user' ? 'passwd' : 'group', name], { encoding: 'utf8' }).split(':')[2]);
}

/** How a command runs: as a user with the groups a login gives (default), or with these kernel groups. */
interface As {
  user: string;
  /** The process's gid (default: nogroup). */
  gid?: string;
  /** Kernel supplementary groups instead of the user's /etc/group ones ([] for none). */
  groups?: string[];
}

function setprivArgs(as: As): string[] {
  const groups = as.groups === undefined ? ['--init-groups']
    : as.groups.length === 0 ? ['--clear-groups'] : [`--groups=${as.groups.map((g) => idOf('group', g)).join(',')}`];
  return [`--reuid=${as.user}`, `--regid=${as.gid ?? 'nogroup'}`, ...groups];
}

describe.skipIf(!isRoot || !haveUserTools)('local access by group (--socket-group, --admin-group)', () => {
  let stateDir: string;
  let workDir: string;
  let guestFiles: string | undefined;
  // The users run this checkout's CLI: they must reach it even under a 0700 parent.
  let restoreModes: (() => void) | undefined;
  let daemon: ChildProcess | undefined;
  let plainYaml: string;
  let argsYaml: string;
  let shadowYaml: string;
  let writableDiskYaml: string;

  function cli(as: As, args: string[]): Promise<CliResult & { pid: number }> {
    return new Promise((resolve, reject) => {
      const p = spawn('setpriv', [...setprivArgs(as), process.execPath, CliPath, ...args], {
        cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', VIRTKIT_CONNECT: join(stateDir, 'virtkit.sock') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      p.on('error', reject);
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, pid: p.pid! }));
    });
  }

  async function startDaemon(args: string[]): Promise<void> {
    const p = spawn(process.execPath, [CliPath, 'daemon', '--state-dir', stateDir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    daemon = p;
    const c = connect(join(stateDir, 'virtkit.sock'));
    try {
      await waitFor('the daemon to answer', async () => {
        if (p.exitCode !== null || p.signalCode !== null) throw new Error(`daemon exited: ${stderr}`);
        return (await c.daemonInfo()).pid === p.pid;
      }, 30_000, 50);
    } finally {
      c.close();
    }
  }

  async function stopDaemon(): Promise<void> {
    const p = daemon;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  function auditLines(): AuditRecord[] {
    return readFileSync(join(stateDir, 'audit.log'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord);
  }

  /** `mode owner group type` of every entry under the state dir, by path relative to it. */
  function modes(): Map<string, string> {
    const out = new Map<string, string>();
    const walk = (dir: string, rel: string): void => {
      for (const name of readdirSync(dir)) {
        const st = lstatSync(join(dir, name));
        const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSocket() ? 's' : 'o';
        out.set(`${rel}${name}`, `${(st.mode & 0o7777).toString(8)} ${st.uid} ${st.gid} ${type}`);
        if (st.isDirectory()) walk(join(dir, name), `${rel}${name}/`);
      }
    };
    const top = lstatSync(stateDir);
    out.set('.', `${(top.mode & 0o7777).toString(8)} ${top.uid} ${top.gid} d`);
    walk(stateDir, '');
    return out;
  }

  /** The promise: state dir 0750 and socket 0660 with the socket group; the rest 0600/0700 root's. */
  function expectPromisedModes(): void {
    const members = idOf('group', MembersGroup);
    const seen = modes();
    expect(seen.get('.')).toBe(`750 0 ${members} d`);
    expect(seen.get('virtkit.sock')).toBe(`660 0 ${members} s`);
    for (const name of ['store.db', 'store.db-wal', 'store.db-shm', 'store.lock', 'daemon.log', 'audit.log']) {
      expect(seen.get(name), name).toBe('600 0 0 f');
    }
    for (const [path, line] of seen) {
      if (path === '.' || path === 'virtkit.sock' || path.includes('/')) continue;
      // Directly in the state dir: nothing readable by others, and every directory closed.
      expect(line, path).toMatch(/^(600 0 0 f|700 0 0 d)$/);
    }
  }

  beforeAll(async () => {
    restoreModes = letOthersTraverse(dirname(dirname(CliPath)));
    execFileSync('groupadd', [MembersGroup]);
    execFileSync('groupadd', [AdminsGroup]);
    for (const [user, groups] of [[Outsider, []], [Member, [MembersGroup]], [Admin, [MembersGroup, AdminsGroup]]] as const) {
      execFileSync('useradd', ['-M', '-N', '-g', 'nogroup', '-d', '/nonexistent', '-s', '/usr/sbin/nologin',
        ...(groups.length > 0 ? ['-G', groups.join(',')] : []), user]);
    }
    stateDir = mkdtempSync('/tmp/vkacc-');
    workDir = mkdtempSync('/tmp/vkacc-defs-');
    chmodSync(workDir, 0o755);
    // The guest's kernel and initrd, copied where host-path checks trust them (the checkout may
    // live under /tmp, which a member could have changed before the start).
    const files = trustedTempDir('vkacc-guest-');
    guestFiles = files;
    const guest = readFileSync(testGuestDefinition(), 'utf8')
      .replace(/^(\s*)(kernel|initrd): (.*)$/gm, (_m, indent: string, key: string, file: string) => {
        const copy = join(files, basename(file));
        copyFileSync(join(testGuestDefinition(), '..', file), copy);
        chmodSync(copy, 0o644);
        return `${indent}${key}: ${copy}`;
      });
    plainYaml = join(workDir, 'plain.yaml');
    writeFileSync(plainYaml, guest.replace(/^name: .*$/m, 'name: plain'), { mode: 0o644 });
    argsYaml = join(workDir, 'args.yaml');
    writeFileSync(argsYaml, 'name: withargs\nmemory: 64MiB\nqemu:\n  args: [-no-user-config]\n', { mode: 0o644 });
    // Host files QEMU (root) would open for the member: one it cannot read, one it would write.
    shadowYaml = join(workDir, 'shadow.yaml');
    writeFileSync(shadowYaml, guest.replace(/^name: .*$/m, 'name: shadow').replace(/^(\s*)initrd: .*$/m, '$1initrd: /etc/shadow'), { mode: 0o644 });
    writableDiskYaml = join(workDir, 'disk.yaml');
    writeFileSync(writableDiskYaml, 'name: hostdisk\nmemory: 64MiB\ndisks: [{source: /etc/hostname, format: raw}]\n', { mode: 0o644 });

    // An older virtkit's state dir: a first start makes the files, then they are opened up as
    // that version left them (store.db and daemon.log 0644, the directories 0755).
    await startDaemon([]);
    await stopDaemon();
    chmodSync(stateDir, 0o755);
    for (const name of readdirSync(stateDir)) {
      const path = join(stateDir, name);
      const st = lstatSync(path);
      if (st.isFile()) chmodSync(path, 0o644);
      if (st.isDirectory()) chmodSync(path, 0o755);
    }
    expect(modes().get('store.db')).toBe('644 0 0 f');

    await startDaemon(['--socket-group', MembersGroup, '--admin-group', AdminsGroup]);
  });

  afterAll(async () => {
    restoreModes?.();
    await stopDaemon().catch(() => undefined);
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    if (stateDir) {
      for (const { pid } of await qemuProcessesUnder(join(stateDir, 'run'))) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      rmSync(stateDir, { recursive: true, force: true });
    }
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    if (guestFiles) rmSync(guestFiles, { recursive: true, force: true });
    for (const user of [Outsider, Member, Admin]) {
      try { execFileSync('userdel', [user], { stdio: 'ignore' }); } catch { /* not created */ }
    }
    for (const group of [MembersGroup, AdminsGroup]) {
      try { execFileSync('groupdel', [group], { stdio: 'ignore' }); } catch { /* not created */ }
    }
  });

  it('corrects an older state dir at start: dir 0750 and socket 0660 for the group, the rest 0600/0700', () => {
    expectPromisedModes();
  });

  it('keeps a user outside both groups from even connecting (the state dir and socket modes)', async () => {
    const r = await cli({ user: Outsider }, ['list', '--all']);
    expect(r.code, r.stderr).toBe(Unreachable);
    expect(r.stderr).toMatch(/connection\.failed|EACCES|permission denied/i);
  });

  it('refuses everything to a process that reaches the socket but whose user is in no group of the daemon', async () => {
    // The kernel lets this process through (its supplementary group is the socket group), but
    // the user is not a member in /etc/group and its gid is not the group: the daemon says no.
    const as = { user: Outsider, groups: [MembersGroup] };
    const list = await cli(as, ['list', '--all']);
    expect(list.code, list.stderr).toBe(Denied);
    expect(list.stderr).toContain('needs read access');
    const define = await cli(as, ['define', plainYaml]);
    expect(define.code, define.stderr).toBe(Denied);
    expect(define.stderr).toContain('needs write access');
    const uid = idOf('user', Outsider);
    const refusals = auditLines().filter((l) => l.uid === uid);
    expect(refusals.map((l) => [l.method, l.access, l.outcome, l.code, l.pid !== null])).toEqual([
      ['domain.list', 'read', 'error', 'access.denied', true],
      ['domain.define', 'write', 'error', 'access.denied', true],
    ]);
  });

  it('lets a socket group member (by /etc/group) list, define, start, stop and undefine a plain domain', async () => {
    const as = { user: Member };
    expect((await cli(as, ['list', '--all'])).code).toBe(0);
    const define = await cli(as, ['define', plainYaml]);
    expect(define.code, define.stderr).toBe(0);
    for (const verb of ['start', 'destroy', 'start']) {
      const r = await cli(as, [verb, 'plain']);
      expect(r.code, `${verb}: ${r.stderr}`).toBe(0);
    }
    const list = await cli(as, ['list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'plain', state: 'running' })]));
    const uid = idOf('user', Member);
    const starts = auditLines().filter((l) => l.uid === uid && l.method === 'domain.start');
    expect(starts).toHaveLength(2);
    expect(starts[0]).toEqual(expect.objectContaining({ access: 'write', domain: 'plain', outcome: 'ok', gid: idOf('group', 'nogroup') }));
    expect(auditLines().filter((l) => l.uid === uid).map((l) => l.method))
      .toEqual(['domain.define', 'domain.start', 'domain.destroy', 'domain.start']);
  });

  it('refuses admin to a socket group member: QEMU arguments, host files, the monitor, host shutdown, snoop; each refusal audited', async () => {
    const as = { user: Member };
    const attempts: [string, string[]][] = [
      ['domain.define', ['define', argsYaml]],
      ['domain.define', ['define', shadowYaml]],
      ['domain.define', ['define', writableDiskYaml]],
      ['domain.monitorCommand', ['qemu-monitor-command', 'plain', '{"execute":"query-status"}']],
      ['host.shutdown', ['host-shutdown', '--timeout', '0']],
      ['store.snoop', ['snoop']],
    ];
    const pids: number[] = [];
    for (const [method, args] of attempts) {
      const r = await cli(as, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(Denied);
      expect(r.stderr, method).toContain(`${method} needs admin access`);
      pids.push(r.pid);
    }
    // Nothing happened: the guest still runs, untainted; the definition with arguments is not there.
    const info = await cli(as, ['dominfo', 'plain', '--json']);
    expect(JSON.parse(info.stdout)).toMatchObject({ state: 'running', tainted: [] });
    for (const name of ['withargs', 'shadow', 'hostdisk']) expect((await cli(as, ['dominfo', name])).code).toBe(exitCodeFor('domain.not-found'));
    const uid = idOf('user', Member);
    const refusals = auditLines().filter((l) => l.uid === uid && l.code === 'access.denied');
    expect(refusals.map((l) => [l.method, l.access])).toEqual(attempts.map(([m]) => [m, 'admin']));
    // The pid in each line is the refused command's own (through setpriv, which execs).
    expect(refusals.map((l) => l.pid)).toEqual(pids);
  });

  it('gives the kernel gid the same standing: a process whose gid is the socket group is a member', async () => {
    // The outsider, with the socket group as its gid and no supplementary groups.
    const r = await cli({ user: Outsider, gid: MembersGroup, groups: [] }, ['list', '--all', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const refused = await cli({ user: Outsider, gid: MembersGroup, groups: [] }, ['qemu-monitor-command', 'plain', '{"execute":"query-status"}']);
    expect(refused.code).toBe(Denied);
  });

  it('lets an admin group member do admin: a definition with QEMU arguments, the monitor, snoop, host shutdown', async () => {
    const as = { user: Admin };
    const define = await cli(as, ['define', argsYaml]);
    expect(define.code, define.stderr).toBe(0);
    const monitor = await cli(as, ['qemu-monitor-command', 'plain', '{"execute":"query-status"}', '--json']);
    expect(monitor.code, monitor.stderr).toBe(0);
    expect(monitor.stdout).toContain('status');

    // snoop prints the store operations of a write made while it listens.
    const snoop = spawn('setpriv', [...setprivArgs(as), process.execPath, CliPath, 'snoop', '--json'], {
      cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', VIRTKIT_CONNECT: join(stateDir, 'virtkit.sock') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let snooped = '';
    snoop.stdout.on('data', (d: Buffer) => { snooped += d.toString(); });
    let toggles = 0;
    try {
      await waitFor('snoop to report an autostart write', async () => {
        if (snoop.exitCode !== null) throw new Error(`snoop exited ${snoop.exitCode}`);
        // Alternating, so every call changes the store (snoop may connect after the first).
        const r = await cli(as, ['autostart', 'withargs', ...(toggles++ % 2 === 1 ? ['--disable'] : [])]);
        if (r.code !== 0) throw new Error(r.stderr);
        return snooped.includes('/domain/withargs/autostart');
      }, 30_000, 500);
    } finally {
      snoop.kill('SIGINT');
    }

    const shutdown = await cli(as, ['host-shutdown', '--timeout', '0']);
    expect(shutdown.code, shutdown.stderr).toBe(0);
    const info = await cli(as, ['dominfo', 'plain', '--json']);
    expect(JSON.parse(info.stdout)).toMatchObject({ state: 'shutoff' });
    const uid = idOf('user', Admin);
    const lines = auditLines().filter((l) => l.uid === uid);
    expect(lines.filter((l) => l.code === 'access.denied')).toEqual([]);
    expect(lines.map((l) => l.method)).toEqual(expect.arrayContaining(['domain.define', 'domain.monitorCommand', 'store.snoop', 'host.shutdown']));
  });

  it('lets the member undefine what it defined, and keeps the promised modes with a guest run behind it', async () => {
    const r = await cli({ user: Member }, ['undefine', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    expectPromisedModes();
    const runDirs = readdirSync(join(stateDir, 'run'));
    for (const name of runDirs) expect(modes().get(`run/${name}`), name).toBe('700 0 0 d');
  });
});
