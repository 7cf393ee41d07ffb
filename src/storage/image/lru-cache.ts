/**
 * A small least-recently-used cache bounded by entry count, holding promises so that two
 * concurrent reads of the same table share one host read. A failed load is not cached.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, Promise<V>>();
  constructor(private readonly capacity: number) {
    if (capacity < 1) throw new RangeError('LRU capacity must be at least 1');
  }

  get(key: K, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Map keeps insertion order: re-inserting marks the entry most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const loading = load();
    this.entries.set(key, loading);
    loading.catch(() => {
      if (this.entries.get(key) === loading) this.entries.delete(key);
    });
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as K;
      this.entries.delete(oldest);
    }
    return loading;
  }

  get size(): number {
    return this.entries.size;
  }
}
