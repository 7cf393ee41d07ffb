/**
 * The one state precondition check. The method table says which domain states each method
 * accepts; this function turns a refusal into the one typed error, `domain.invalid-state`,
 * whose message names the current state and the allowed ones and whose data carries them.
 * The daemon calls it before the handler; the manager calls it again under the domain's lock,
 * where the state cannot change underneath it.
 */
import { VirtkitError } from '../util/errors.js';
import { Methods, type MethodName } from './methods.js';
import type { DomainState } from './schemas.js';

/** The methods that accept only some domain states (their `states` is a list). */
export type StatefulMethod = {
  [K in MethodName]: (typeof Methods)[K]['states'] extends readonly DomainState[] ? K : never
}[MethodName];

/** How a refusal names what was asked: `cannot <verb> "web": ...`. */
const Verbs: Record<StatefulMethod, string> = {
  'domain.undefine': 'undefine',
  'domain.start': 'start',
  'domain.shutdown': 'shut down',
  'domain.destroy': 'destroy',
  'domain.reboot': 'reboot',
  'domain.reset': 'reset',
  'domain.suspend': 'suspend',
  'domain.resume': 'resume',
  'domain.monitorCommand': 'send a monitor command to',
  'domain.save': 'save',
  'domain.managedSave': 'save',
  'domain.managedSaveRemove': 'remove the managed save of',
  'domain.dump': 'dump the memory of',
  'domain.setMemory': 'set the memory of',
  'domain.memoryStats': 'read the memory statistics of',
  'domain.vcpuInfo': 'list the vCPUs of',
  'domain.traceEvents': 'list the trace events of',
  'domain.stats': 'read the statistics of',
  'domain.vncDisplay': 'show the VNC display of',
  'domain.setVncPassword': 'set the VNC password of',
  'domain.screenshot': 'take a screenshot of',
  'domain.sendKey': 'send keys to',
};

const StateWords: Record<DomainState, string> = {
  running: 'running',
  paused: 'paused',
  shutoff: 'shut off',
  crashed: 'crashed',
};

export function isStatefulMethod(method: MethodName): method is StatefulMethod {
  return Array.isArray(Methods[method].states);
}

/** The states `method` accepts; with `force`, those its `forceStates` add. */
export function allowedStates(method: StatefulMethod, opts: { force?: boolean } = {}): readonly DomainState[] {
  const spec = Methods[method];
  const base: readonly DomainState[] = spec.states;
  if (opts.force !== true || !('forceStates' in spec)) return base;
  const forced: readonly DomainState[] = spec.forceStates;
  return [...new Set([...base, ...forced])];
}

/**
 * Throws `domain.invalid-state` unless `method` accepts a domain in `current` state:
 * `cannot suspend "web": it is shut off (allowed: running)`, data
 * `{ name, method, state, allowed }`. `force` is the request's force flag (undefine).
 */
export function assertStateAllowed(method: StatefulMethod, domain: string, current: DomainState, opts: { force?: boolean } = {}): void {
  const allowed = allowedStates(method, opts);
  if (allowed.includes(current)) return;
  throw new VirtkitError('domain.invalid-state',
    `cannot ${Verbs[method]} "${domain}": it is ${StateWords[current]} (allowed: ${allowed.join(', ')})`,
    { name: domain, method, state: current, allowed: [...allowed] });
}
