/** The host overview of the web manager (`host.info`): the driver's capabilities and the host's size. */
import type { FastifyRequest } from 'fastify';
import { cpus, hostname, totalmem } from 'node:os';
import type { HostInfo, MethodName } from '../api/index.js';
import type { Origin } from '../store/index.js';
import type { Manager } from './manager.js';

type Handler = (req: FastifyRequest, origin: Origin) => Promise<unknown>;

export function webHandlers(m: Manager): Record<Extract<MethodName, 'host.info'>, Handler> {
  return {
    'host.info': async (): Promise<HostInfo> => {
      const caps = await m.driver.capabilities();
      const cpuList = cpus();
      return {
        hostname: hostname(),
        cpus: cpuList.length,
        cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
        memoryBytes: totalmem(),
        qemu: { binary: caps.binary, version: caps.version, accelerators: caps.accelerators },
        accel: caps.kvm.usable ? { auto: 'kvm', reason: caps.kvm.reason || 'KVM passed the functional check' }
          : { auto: 'tcg', reason: caps.kvm.reason },
      };
    },
  };
}
