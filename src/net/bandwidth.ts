/**
 * NIC bandwidth limits: `10Mbit`, `512kbit`, `1Gbit`, `100mbps` (bytes) as tc spells rates.
 * Applied on the tap with tc: the guest's inbound traffic is what the host sends into the tap
 * (an egress tbf on it); its outbound traffic is what the tap receives (an ingress policer).
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { VirtkitError } from '../util/errors.js';
import { runTool } from './host.js';

const Units: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };

/** A rate in bits per second; refuses anything but a positive number and a tc rate unit. */
export function parseRate(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)([A-Za-z]+)$/.exec(text.trim());
  const unit = m?.[2]?.toLowerCase();
  const factor = unit === undefined ? undefined : Units[unit];
  if (!m || factor === undefined || Number(m[1]) <= 0) {
    throw new VirtkitError('definition.invalid', `${field}: must be a rate like 10Mbit (units: bit, kbit, mbit, gbit, or bps, kbps, mbps, gbps for bytes), got "${text.slice(0, 32)}"`, { field });
  }
  return Math.round(Number(m[1]) * factor);
}

/** The kernel module the outbound policer (tc ... police) needs. */
export const PolicerModule = 'act_police';

/**
 * Whether this kernel can police a tap's ingress: act_police loaded, built in, or loadable
 * (listed in modules.builtin or modules.dep of the running kernel). A host without it (a
 * container's kernel with no module tree) fails `tc filter ... police` with "Failed to load TC
 * action module", after the tap exists: this answers first, so the start is refused cleanly.
 */
export function policerAvailable(kernel = release(), sysModule = '/sys/module', libModules = '/lib/modules'): boolean {
  if (existsSync(join(sysModule, PolicerModule))) return true;
  for (const list of ['modules.builtin', 'modules.dep']) {
    try {
      if (readFileSync(join(libModules, kernel, list), 'utf8').includes(`/${PolicerModule}.ko`)) return true;
    } catch { /* no such list: not this way */ }
  }
  return false;
}

/** The refusal of `bandwidth.outbound` on a host without the policer module. */
export function noPolicerError(nic: string): VirtkitError {
  return new VirtkitError('operation.unsupported',
    `nics: NIC "${nic}" bandwidth.outbound needs the kernel module ${PolicerModule} (tc police on the tap's ingress), which this host's kernel does not have (modprobe ${PolicerModule}); remove bandwidth.outbound (bandwidth.inbound needs only sch_tbf)`,
    { nic, field: 'bandwidth.outbound', module: PolicerModule });
}

export async function applyBandwidth(tap: string, limits: { inbound?: string; outbound?: string }, nic = tap): Promise<void> {
  if (limits.inbound) {
    const bits = parseRate(limits.inbound, 'bandwidth.inbound');
    const burst = Math.max(1600, Math.round(bits / 8 / 100));
    await runTool('tc', ['qdisc', 'replace', 'dev', tap, 'root', 'tbf', 'rate', `${bits}bit`, 'burst', String(burst), 'latency', '50ms']);
  }
  if (limits.outbound) {
    const bits = parseRate(limits.outbound, 'bandwidth.outbound');
    const burst = Math.max(1600, Math.round(bits / 8 / 100));
    await runTool('tc', ['qdisc', 'replace', 'dev', tap, 'ingress']);
    try {
      await runTool('tc', ['filter', 'replace', 'dev', tap, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0',
        'police', 'rate', `${bits}bit`, 'burst', String(burst), 'drop']);
    } catch (err) {
      // The module list said yes, the kernel said no (a module that fails to load).
      if (/action module|act_police/i.test((err as Error).message)) throw noPolicerError(nic);
      throw err;
    }
  }
}
