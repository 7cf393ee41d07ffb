/** QMP events virtkit reacts to, typed after qapi/run-state.json. Others arrive untyped. */

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvents {
  SHUTDOWN: { guest: boolean; reason: string };
  POWERDOWN: Record<string, never>;
  RESET: { guest: boolean; reason: string };
  STOP: Record<string, never>;
  RESUME: Record<string, never>;
  GUEST_PANICKED: { action: string; info?: unknown };
}

/** One event as delivered to listeners. `data` is `{}` when QEMU sent none. */
export interface QmpEvent<E extends string = string> {
  event: E;
  data: E extends keyof QmpEvents ? QmpEvents[E] : Record<string, unknown>;
  timestamp: QmpTimestamp;
}
