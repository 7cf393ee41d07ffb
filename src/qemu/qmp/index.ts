export { QmpClient, QmpChannels } from './client.js';
export type { QmpCallOptions, QmpConnectOptions, QmpGreeting } from './client.js';
export type { QmpCommands, QmpCommandName, QmpArgs, QmpReturn, RunState, MachineInfo, CpuDefinitionInfo, VersionInfo } from './commands.js';
export { RunStates, TypedQmpCommands } from './commands.js';
export type { QmpEvent, QmpEvents, QmpTimestamp } from './events.js';
