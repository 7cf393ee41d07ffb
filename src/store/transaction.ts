/**
 * A transaction's private view: the committed store seen through the transaction's own
 * buffered writes, plus the read set (revisions of what it read or listed) that the commit
 * verifies. Nothing here touches the backend except to read.
 */
import { VirtkitError } from '../util/errors.js';
import { ancestorsOf, isAtOrBelow, parentPath } from './path.js';
import type { CommitChecks, Mutation, NodeRecord, StoreBackend } from './types.js';

/**
 * A buffered node. 'write' fixes the value; 'mkdir' (explicit) and 'parent' (a parent made
 * by a write below it) only say the node exists: it keeps its committed value if it has
 * one and is not being removed by this transaction, else it is ''.
 */
type Entry =
  | { readonly kind: 'write'; readonly value: string }
  | { readonly kind: 'mkdir' }
  | { readonly kind: 'parent' };

export class TransactionView {
  private readonly entries = new Map<string, Entry>();
  /** Subtree roots removed, in order; committed before any entry. */
  private readonly removed: string[] = [];
  private readonly reads = new Map<string, number>();
  private readonly lists = new Map<string, number>();

  constructor(private readonly backend: StoreBackend) {}

  async read(path: string): Promise<string | undefined> {
    const entry = this.entries.get(path);
    if (entry?.kind === 'write') return entry.value;
    if (this.isRemoved(path)) return entry === undefined ? undefined : '';
    const node = await this.readBase(path);
    if (entry !== undefined) return node?.value ?? '';
    return node?.value;
  }

  async exists(path: string): Promise<boolean> {
    if (this.entries.has(path)) return true;
    if (this.isRemoved(path)) return false;
    return (await this.readBase(path)) !== undefined;
  }

  async list(path: string): Promise<string[] | undefined> {
    const names = new Set<string>();
    let exists = this.entries.has(path);
    if (!this.isRemoved(path)) {
      const base = await this.backend.children(path);
      if (!this.lists.has(path)) this.lists.set(path, base?.node.childRevision ?? 0);
      if (base !== undefined) {
        exists = true;
        const prefix = path === '/' ? '/' : `${path}/`;
        for (const name of base.names) if (!this.isRemoved(prefix + name)) names.add(name);
      }
    }
    if (!exists) return undefined;
    for (const p of this.entries.keys()) {
      if (parentPath(p) === path) names.add(p.slice(p.lastIndexOf('/') + 1));
    }
    return [...names].sort(compareBytewise);
  }

  write(path: string, value: string): void {
    this.entries.set(path, { kind: 'write', value });
    this.addParents(path);
  }

  mkdir(path: string): void {
    if (path === '/' || this.entries.has(path)) return;
    this.entries.set(path, { kind: 'mkdir' });
    this.addParents(path);
  }

  /** Removes `path` and below from the view; resolves whether anything was there. */
  async rm(path: string): Promise<boolean> {
    const existed = await this.exists(path);
    for (const p of [...this.entries.keys()]) if (isAtOrBelow(p, path)) this.entries.delete(p);
    if (!this.isRemoved(path)) {
      // A removal of /a makes earlier removals below /a redundant.
      for (let i = this.removed.length - 1; i >= 0; i--) if (isAtOrBelow(this.removed[i]!, path)) this.removed.splice(i, 1);
      this.removed.push(path);
    }
    return existed;
  }

  /** What to verify and what to apply at commit. */
  commitPlan(): { checks: CommitChecks; mutations: Mutation[] } {
    const mutations: Mutation[] = this.removed.map((path) => ({ op: 'rm', path }));
    const paths = [...this.entries.keys()].sort(compareBytewise);
    for (const path of paths) {
      const entry = this.entries.get(path)!;
      if (entry.kind === 'write') {
        mutations.push({ op: 'write', path, value: entry.value });
      } else if (entry.kind === 'mkdir' || !this.hasExplicitDescendant(path)) {
        // A parent left without the write that made it (written, then removed, in this
        // transaction) still exists in the view, so the commit must create it too.
        mutations.push({ op: 'mkdir', path });
      }
    }
    return { checks: { reads: this.reads, lists: this.lists }, mutations };
  }

  get isReadOnly(): boolean {
    return this.entries.size === 0 && this.removed.length === 0;
  }

  private async readBase(path: string): Promise<NodeRecord | undefined> {
    const node = await this.backend.get(path);
    // Keep the first revision seen: if a later read sees another, the commit fails anyway.
    if (!this.reads.has(path)) this.reads.set(path, node?.modRevision ?? 0);
    return node;
  }

  private isRemoved(path: string): boolean {
    for (const r of this.removed) if (isAtOrBelow(path, r)) return true;
    return false;
  }

  private addParents(path: string): void {
    const ancestors = ancestorsOf(path);
    for (let i = ancestors.length - 1; i >= 1; i--) {
      const p = ancestors[i]!;
      if (this.entries.has(p)) break;
      this.entries.set(p, { kind: 'parent' });
    }
  }

  private hasExplicitDescendant(path: string): boolean {
    for (const [p, e] of this.entries) if (e.kind !== 'parent' && p !== path && isAtOrBelow(p, path)) return true;
    return false;
  }
}

/** Paths are ASCII, so UTF-16 order is byte order (the order SQLite and etcd use). */
export function compareBytewise(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function conflictError(txId: number, path: string): VirtkitError {
  return new VirtkitError('store.conflict',
    `transaction ${txId} conflicts with a concurrent change of ${path}; retry it`,
    { retryable: true, path, tx: txId });
}
