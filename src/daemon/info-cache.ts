/**
 * `domain.info`'s answer, derived once per revision of a domain's values. Building it parses the
 * saved definition (and, while the guest runs, the live one, deep-compared with the saved one
 * for `definitionDiffers`): the largest part of an `info` call's CPU and of its garbage. The
 * derived answer is a pure function of the domain's texts in the store, so it is kept beside
 * those texts and reused while a read returns the same ones. The store hands back the same
 * string objects until a value changes (its node cache), so the check is a pointer comparison
 * on the hot path and a text comparison after a cache eviction: never a stale answer.
 */
import type { DomainInfo } from '../api/index.js';
import type { StoreReader } from '../store/index.js';
import { domainFromTexts, domainNotFound, readDomainTexts, type DomainRecord, type DomainTexts } from './domain-records.js';

interface Entry {
  texts: DomainTexts;
  info: DomainInfo;
}

function sameTexts(a: DomainTexts, b: DomainTexts): boolean {
  return a.definition === b.definition && a.live === b.live && a.status === b.status
    && a.uuid === b.uuid && a.autostart === b.autostart && a.tainted === b.tainted;
}

export class DomainInfoCache {
  private readonly entries = new Map<string, Entry>();

  /** At most one entry per domain; bounded all the same (a daemon with more domains than this rebuilds). */
  constructor(private readonly derive: (rec: DomainRecord) => DomainInfo, private readonly maxEntries = 10_000) {}

  /**
   * The info of `name` as `derive` makes it from the domain's record, read now; throws
   * `domain.not-found`. The caller gets its own shallow copy (it may add fields).
   */
  async info(r: StoreReader, name: string): Promise<DomainInfo> {
    const texts = await readDomainTexts(r, name);
    const known = this.entries.get(name);
    if (known !== undefined && sameTexts(known.texts, texts)) return { ...known.info, tainted: [...known.info.tainted] };
    const rec = domainFromTexts(name, texts);
    if (rec === undefined) {
      this.entries.delete(name);
      throw domainNotFound(name);
    }
    const info = this.derive(rec);
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(name, { texts, info: { ...info, tainted: [...info.tainted] } });
    return info;
  }

  /** Forgets a domain (undefined, renamed). Not needed for correctness: a changed text misses. */
  forget(name: string): void {
    this.entries.delete(name);
  }
}
