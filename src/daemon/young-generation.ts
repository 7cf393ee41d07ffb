/**
 * V8's young generation while the daemon loads and starts. Loading its modules and compiling
 * the routes allocate a lot, and V8 grows the young generation's two semi-spaces from 1 MiB up
 * to 16 MiB each on the way; an idle daemon then keeps those 32 MiB resident until V8's memory
 * reducer runs, which it does only after a full GC that an idle start may never reach
 * (docs/performance.md, "Daemon memory"). Kept at its first size while the daemon starts, it
 * stays there until calls need more.
 *
 * Only while starting: held for the daemon's whole life (as `node --max-semi-space-size=1` does)
 * it would scavenge every MiB its calls allocate and promote the objects of calls still in
 * flight. `npm run bench memory` finds one connection's calls within its noise either way
 * (30-35 us of CPU per `info` against 31-32 us); many clients at once were not measured, so calls
 * keep V8's default.
 *
 * V8 reads the growth factor each time it grows the young generation, so setting it at run time
 * takes effect; it clamps a factor below 2 given on the command line, not one set later. 2 is
 * V8's default.
 */
import { setFlagsFromString } from 'node:v8';

const DefaultGrowthFactor = 2;

/** Runs `start` with the young generation held at its size; V8's default growth after. */
export async function smallYoungGenerationWhile<T>(start: () => Promise<T>): Promise<T> {
  setFlagsFromString('--semi-space-growth-factor=1');
  try {
    return await start();
  } finally {
    setFlagsFromString(`--semi-space-growth-factor=${DefaultGrowthFactor}`);
  }
}
