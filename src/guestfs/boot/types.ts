/**
 * What the bootloader configuration parsers produce: a menu of entries (kernel, initrds,
 * command line) and which one boots by default. The parsers are pure functions over text;
 * guest configurations are untrusted, so every one of them works within the limits below
 * and reports bad input as `boot.config-corrupt`.
 */
import { VirtkitError } from '../../util/errors.js';

export const BootLoaderKinds = ['grub', 'bls', 'extlinux'] as const;
export type BootLoaderKind = (typeof BootLoaderKinds)[number];

/** One bootable entry of a configuration, as its bootloader would load it. */
export interface MenuEntry {
  /** The menu title; for a GRUB entry inside submenus, the titles joined by `>`. */
  readonly title: string;
  /** GRUB `--id`, BLS file name without `.conf`, extlinux LABEL. */
  readonly id?: string;
  /** Path of the kernel as the configuration names it, absent when the entry loads none. */
  readonly kernel?: string;
  /** Initrd paths in load order (the kernel sees them concatenated). */
  readonly initrds: readonly string[];
  readonly cmdline: string;
  /** BLS `version`. */
  readonly version?: string;
  /** GRUB: the entry's position as `set default` counts it (`[1, 0]` is "1>0"). */
  readonly menuPath?: readonly number[];
}

export interface BootMenu {
  readonly kind: BootLoaderKind;
  readonly entries: readonly MenuEntry[];
  /** Index in `entries` of the default entry, absent when the menu has no entries. */
  readonly defaultIndex?: number;
  /** Seconds the menu waits, when the configuration says. */
  readonly timeout?: number;
  /** Things the parser could not honour (a `saved` default, an INCLUDE it does not follow). */
  readonly warnings: readonly string[];
}

/** Largest configuration file read (a real grub.cfg is a few tens of KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Most entries one configuration (or one disk) may yield. */
export const MAX_ENTRIES = 1024;
/** Longest word, variable value or command line after expansion. */
export const MAX_WORD_BYTES = 64 * 1024;
/** Deepest nesting of GRUB blocks (submenus, functions, if). */
export const MAX_NESTING = 32;
/** Most BLS entry files read from one directory. */
export const MAX_BLS_FILES = 1024;
/** Most initrds one entry may load. */
export const MAX_INITRDS = 64;

export function configError(source: string, message: string, data: Record<string, unknown> = {}): VirtkitError {
  return new VirtkitError('boot.config-corrupt', `${source}: ${message}`, { source, ...data });
}

/** Refuses entries naming more initrds than MAX_INITRDS (each is looked up on every filesystem). */
export function checkInitrdCount(initrds: readonly string[], source: string): void {
  if (initrds.length > MAX_INITRDS) throw configError(source, `an entry names more than ${MAX_INITRDS} initrds`, { count: initrds.length });
}

/** Refuses texts above MAX_CONFIG_BYTES before any parsing work. */
export function checkConfigSize(text: string, source: string): void {
  if (text.length > MAX_CONFIG_BYTES) {
    throw configError(source, `larger than ${MAX_CONFIG_BYTES} bytes`, { size: text.length });
  }
}
