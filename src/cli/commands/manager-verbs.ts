/** The verbs that talk to the manager daemon (virsh names), registered together. */
import type { Command } from 'commander';
import { register as registerAutostart } from './autostart.js';
import { register as registerConsole } from './console.js';
import { register as registerDaemon } from './daemon.js';
import { register as registerDefine } from './define.js';
import { register as registerDefinition } from './definition.js';
import { register as registerEvent } from './event.js';
import { register as registerHostShutdown } from './host-shutdown.js';
import { register as registerInfo } from './info.js';
import { register as registerLifecycle } from './lifecycle.js';
import { register as registerMonitor } from './monitor.js';
import { register as registerSnoop } from './snoop.js';

export function register(program: Command): void {
  registerDaemon(program);
  registerDefine(program);
  registerLifecycle(program);
  registerInfo(program);
  registerAutostart(program);
  registerDefinition(program);
  registerConsole(program);
  registerMonitor(program);
  registerEvent(program);
  registerSnoop(program);
  registerHostShutdown(program);
}
