/**
 * One operation at a time per key (per domain name): start, define, edit and state changes of
 * one guest are serialized, different guests proceed in parallel. Waiting shutdowns do not
 * hold it, so a destroy can cut a slow shutdown short.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
