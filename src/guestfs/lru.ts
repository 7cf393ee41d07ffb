/**
 * A least-recently-used cache bounded by total weight (entries, bytes, ...), so metadata
 * caches of the readers stay bounded however large or hostile the image is.
 *
 * The recency order is a doubly linked list beside the Map, not the Map's own insertion
 * order: evicting from the front of a Map that keeps being deleted from makes every later
 * iteration skip the deleted slots, which turned a 65,000-directory walk quadratic.
 */
interface Slot<K, V> {
  readonly key: K;
  value: V;
  weight: number;
  prev: Slot<K, V> | undefined;
  next: Slot<K, V> | undefined;
}

export class LruCache<K, V> {
  private readonly map = new Map<K, Slot<K, V>>();
  /** Least recently used. */
  private oldest: Slot<K, V> | undefined;
  /** Most recently used. */
  private newest: Slot<K, V> | undefined;
  private total = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    if (slot !== this.newest) {
      this.unlink(slot);
      this.append(slot);
    }
    return slot.value;
  }

  set(key: K, value: V): void {
    const weight = this.weigh(value);
    const old = this.map.get(key);
    if (old !== undefined) this.remove(old);
    if (weight > this.maxWeight) return;
    const slot: Slot<K, V> = { key, value, weight, prev: undefined, next: undefined };
    this.map.set(key, slot);
    this.append(slot);
    this.total += weight;
    while (this.total > this.maxWeight && this.oldest !== undefined) this.remove(this.oldest);
  }

  delete(key: K): void {
    const slot = this.map.get(key);
    if (slot !== undefined) this.remove(slot);
  }

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.total;
  }

  private remove(slot: Slot<K, V>): void {
    this.unlink(slot);
    this.map.delete(slot.key);
    this.total -= slot.weight;
  }

  private unlink(slot: Slot<K, V>): void {
    if (slot.prev === undefined) this.oldest = slot.next;
    else slot.prev.next = slot.next;
    if (slot.next === undefined) this.newest = slot.prev;
    else slot.next.prev = slot.prev;
    slot.prev = undefined;
    slot.next = undefined;
  }

  private append(slot: Slot<K, V>): void {
    slot.prev = this.newest;
    if (this.newest === undefined) this.oldest = slot;
    else this.newest.next = slot;
    this.newest = slot;
  }
}
