/**
 * Access classes: what a caller may do, declared by every entry of the method table and by the
 * streams outside it. `read` changes nothing; `write` runs lifecycle operations and edits
 * definitions and volumes; `admin` reaches past the manager's model (raw monitor commands,
 * QEMU command-line passthrough, host shutdown, pools on arbitrary host directories, snoop).
 * The daemon decides who holds which class (src/daemon/access.ts); the web UI and remote
 * access authorize against the same names.
 */
export const AccessClasses = ['read', 'write', 'admin'] as const;
export type AccessClass = (typeof AccessClasses)[number];

export interface StreamSpec {
  readonly access: AccessClass;
  /** Runs for a long time and reports progress (or streams until the client leaves). */
  readonly long: boolean;
}

/**
 * The streams outside the request/response table (see `StreamPaths` and `VolumeContentPath`),
 * by the name a refusal gives them. The console is `write` to type on and `read` to watch.
 */
export const StreamSpecs = {
  'events.stream': { access: 'read', long: true },
  'store.snoop': { access: 'admin', long: true },
  'domain.console': { access: 'write', long: true },
  'domain.consoleWatch': { access: 'read', long: true },
  'volume.download': { access: 'read', long: true },
  'volume.upload': { access: 'write', long: true },
  // observability (docs/observability.md): a trace switches QEMU's trace events on; a capture sees all traffic
  'domain.trace': { access: 'write', long: true },
  'domain.netdump': { access: 'admin', long: true },
  'daemon.probe': { access: 'admin', long: true },
  'daemon.metrics': { access: 'read', long: false },
} as const satisfies Record<string, StreamSpec>;

export type StreamName = keyof typeof StreamSpecs;
