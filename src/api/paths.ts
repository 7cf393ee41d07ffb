/**
 * Where the manager keeps its state and run directories by default. Pure: the caller passes
 * the process facts in, so the client and the daemon agree without importing each other.
 * root: /var/lib/virtkit (state) and /run/virtkit (run dirs); otherwise
 * $XDG_STATE_HOME/virtkit (default ~/.local/state/virtkit) and $XDG_RUNTIME_DIR/virtkit
 * (falling back to the state dir's run/ when there is no runtime dir).
 */
export interface HostFacts {
  isRoot: boolean;
  home: string;
  env: Record<string, string | undefined>;
}

export interface ManagerDirs {
  stateDir: string;
  runDir: string;
  socketPath: string;
}

export const SocketFileName = 'virtkit.sock';

export function defaultStateDir(facts: HostFacts): string {
  if (facts.isRoot) return '/var/lib/virtkit';
  const xdg = facts.env.XDG_STATE_HOME;
  return `${xdg && xdg.startsWith('/') ? xdg : `${facts.home}/.local/state`}/virtkit`;
}

export function managerDirs(facts: HostFacts, overrides: { stateDir?: string; runDir?: string } = {}): ManagerDirs {
  const stateDir = overrides.stateDir ?? defaultStateDir(facts);
  let runDir = overrides.runDir;
  if (runDir === undefined) {
    if (overrides.stateDir !== undefined) runDir = `${stateDir}/run`;
    else if (facts.isRoot) runDir = '/run/virtkit';
    else {
      const xdg = facts.env.XDG_RUNTIME_DIR;
      runDir = xdg && xdg.startsWith('/') ? `${xdg}/virtkit` : `${stateDir}/run`;
    }
  }
  return { stateDir, runDir, socketPath: `${stateDir}/${SocketFileName}` };
}
