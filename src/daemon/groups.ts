/**
 * Group membership as the access policy sees it. SO_PEERCRED tells the daemon a caller's uid
 * and its process's gid, not the process's supplementary groups, so a user's other groups come
 * from the user database: /etc/passwd names the uid, /etc/group lists the groups that name the
 * user as a member. Only the files are read (no NSS: groups that live in LDAP or SSSD alone
 * are not seen); a process per connection (`id -G`) would cost more than the call it guards.
 *
 * Both files are parsed once and parsed again only when one of them changes (its inode, size
 * or modification time): a `usermod -aG` or `gpasswd -d` takes effect for the next connection
 * without a daemon restart, and a connection costs two stat(2) calls, not two file reads.
 */
import { readFileSync, statSync } from 'node:fs';
import { VirtkitError } from '../util/errors.js';

export interface GroupFiles {
  readonly passwd: string;
  readonly group: string;
}

export const SystemGroupFiles: GroupFiles = { passwd: '/etc/passwd', group: '/etc/group' };

interface Parsed {
  /** Names of each uid (a uid may have several, e.g. root and toor). */
  namesOfUid: Map<number, string[]>;
  gidOfGroup: Map<string, number>;
  /** Supplementary groups by user name: the gids of the groups that list the name. */
  gidsOfMember: Map<string, number[]>;
}

function fileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function parse(files: GroupFiles): Parsed {
  const namesOfUid = new Map<number, string[]>();
  for (const line of readOrEmpty(files.passwd).split('\n')) {
    const [name, , uid] = line.split(':');
    if (!name || uid === undefined || !/^\d+$/.test(uid)) continue;
    const names = namesOfUid.get(Number(uid)) ?? [];
    names.push(name);
    namesOfUid.set(Number(uid), names);
  }
  const gidOfGroup = new Map<string, number>();
  const gidsOfMember = new Map<string, number[]>();
  for (const line of readOrEmpty(files.group).split('\n')) {
    const [name, , gidText, members] = line.split(':');
    if (!name || gidText === undefined || !/^\d+$/.test(gidText)) continue;
    const gid = Number(gidText);
    if (!gidOfGroup.has(name)) gidOfGroup.set(name, gid);
    for (const member of (members ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '')) {
      const gids = gidsOfMember.get(member) ?? [];
      gids.push(gid);
      gidsOfMember.set(member, gids);
    }
  }
  return { namesOfUid, gidOfGroup, gidsOfMember };
}

export class GroupDatabase {
  private parsed: Parsed | undefined;
  private stamp = '';

  constructor(readonly files: GroupFiles = SystemGroupFiles) {}

  /** The parsed files, parsed again if either changed since the last look. */
  private current(): Parsed {
    const stamp = `${fileStamp(this.files.passwd)}|${fileStamp(this.files.group)}`;
    if (!this.parsed || stamp !== this.stamp) {
      this.parsed = parse(this.files);
      this.stamp = stamp;
    }
    return this.parsed;
  }

  /** A group's gid, from its name or a number; `argument.invalid` for a name that is not there. */
  gidOf(group: string): number {
    if (/^\d+$/.test(group)) return Number(group);
    const gid = this.current().gidOfGroup.get(group);
    if (gid === undefined) throw new VirtkitError('argument.invalid', `no such group: ${group} (not in ${this.files.group})`, { group });
    return gid;
  }

  /** The supplementary groups of `uid`: every group that lists one of the uid's names as a member. */
  supplementaryGids(uid: number): ReadonlySet<number> {
    const { namesOfUid, gidsOfMember } = this.current();
    const out = new Set<number>();
    for (const name of namesOfUid.get(uid) ?? []) {
      for (const gid of gidsOfMember.get(name) ?? []) out.add(gid);
    }
    return out;
  }

  /** Whether a caller with this uid and (kernel-given) gid is in `gid`. */
  isMember(caller: { uid: number; gid?: number | undefined }, gid: number): boolean {
    return caller.gid === gid || this.supplementaryGids(caller.uid).has(gid);
  }
}
