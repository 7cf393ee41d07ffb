/**
 * The QMP commands virtkit uses, typed by hand after QEMU's QAPI schema (qapi/*.json).
 * Commands outside this table go through `QmpClient.executeUntyped`.
 */

/** QEMU's RunState (qapi/run-state.json). */
export const RunStates = [
  'debug', 'finish-migrate', 'inmigrate', 'internal-error', 'io-error', 'paused', 'postmigrate',
  'prelaunch', 'restore-vm', 'running', 'save-vm', 'shutdown', 'suspended', 'watchdog',
  'guest-panicked', 'colo',
] as const;
export type RunState = (typeof RunStates)[number];

export interface MachineInfo {
  name: string;
  alias?: string;
  'is-default'?: boolean;
  'cpu-max': number;
  'hotpluggable-cpus': boolean;
  deprecated: boolean;
  'default-cpu-type'?: string;
}

export interface CpuDefinitionInfo {
  name: string;
  'migration-safe'?: boolean;
  static: boolean;
  deprecated: boolean;
  'unavailable-features'?: string[];
  typename: string;
}

export interface ObjectTypeInfo {
  name: string;
  abstract?: boolean;
  parent?: string;
}

/** One property of a QOM object; children are `child<TYPE>`. */
export interface ObjectPropertyInfo {
  name: string;
  type: string;
  description?: string;
}

export interface VersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

type Empty = Record<string, never>;

export interface QmpCommands {
  qmp_capabilities: { args?: { enable?: string[] }; ret: Empty };
  'query-status': { args?: undefined; ret: { running: boolean; singlestep?: boolean; status: RunState } };
  'query-version': { args?: undefined; ret: VersionInfo };
  'query-machines': { args?: undefined; ret: MachineInfo[] };
  'query-cpu-definitions': { args?: undefined; ret: CpuDefinitionInfo[] };
  'query-kvm': { args?: undefined; ret: { enabled: boolean; present: boolean } };
  'qom-list-types': { args?: { implements?: string; abstract?: boolean }; ret: ObjectTypeInfo[] };
  'qom-list': { args: { path: string }; ret: ObjectPropertyInfo[] };
  system_powerdown: { args?: undefined; ret: Empty };
  system_reset: { args?: undefined; ret: Empty };
  stop: { args?: undefined; ret: Empty };
  cont: { args?: undefined; ret: Empty };
  quit: { args?: undefined; ret: Empty };
  'set-action': {
    args: { reboot?: 'reset' | 'shutdown'; shutdown?: 'poweroff' | 'pause'; panic?: 'pause' | 'shutdown' | 'none' };
    ret: Empty;
  };
  'human-monitor-command': { args: { 'command-line': string; 'cpu-index'?: number }; ret: string };
}

export type QmpCommandName = keyof QmpCommands;
export type QmpArgs<K extends QmpCommandName> = QmpCommands[K]['args'];
export type QmpReturn<K extends QmpCommandName> = QmpCommands[K]['ret'];

/** The commands of the typed table, at run time (tests check each against QEMU's own schema). */
export const TypedQmpCommands = [
  'qmp_capabilities', 'query-status', 'query-version', 'query-machines', 'query-cpu-definitions', 'query-kvm',
  'qom-list-types', 'qom-list', 'system_powerdown', 'system_reset', 'stop', 'cont', 'quit', 'set-action', 'human-monitor-command',
] as const satisfies readonly QmpCommandName[];

