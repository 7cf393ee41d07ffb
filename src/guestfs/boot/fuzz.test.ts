/**
 * Guest bootloader configurations are untrusted: every parser, fed mutated and random
 * configurations, returns a well-formed menu or throws `boot.config-corrupt`, never anything
 * else, and in bounded time. VIRTKIT_FUZZ_ITERATIONS raises the count for longer campaigns.
 */
import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../../util/errors.js';
import { buildBlsMenu, parseBlsEntry, parseLoaderConf } from './bls.js';
import { parseExtlinuxConfig } from './extlinux.js';
import { parseGrubConfig } from './grub.js';
import { matchesGlob } from './name-glob.js';
import { MAX_ENTRIES, type BootMenu } from './types.js';
import { compareVersions } from './version-compare.js';

const ITERATIONS = Number(process.env['VIRTKIT_FUZZ_ITERATIONS'] ?? 10_000);

class Rng {
  constructor(private x: number) {}
  next(): number {
    this.x ^= this.x << 13; this.x >>>= 0;
    this.x ^= this.x >>> 17;
    this.x ^= this.x << 5; this.x >>>= 0;
    return this.x;
  }
  below(n: number): number {
    return this.next() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

const GRUB_SEED = `set default="1>0"
set timeout=5
set opts="ro quiet"
if [ x$feature = xy ]; then id_opt="--id"; else id_opt=""; fi
function f { insmod gzio; }
menuentry 'First' --class os $id_opt 'first-id' {
  search --set=root --fs-uuid 1234
  linux /boot/vmlinuz root=/dev/vda1 $opts \\
    console=ttyS0
  initrd /boot/initrd.img
}
submenu "Advanced \\"options\\"" {
  menuentry 'Nested' { linux (hd0,1)/vmlinuz-\${opts}; initrd /a /b }
  submenu 'Deeper' { menuentry x { linux16 /x } }
}
`;
const GRUB_TOKENS = ['{', '}', "'", '"', '\\', '$', '${', '${a}', '\n', ';', ' ', 'menuentry ', 'submenu ', 'set default=',
  '>', 'linux ', 'initrd ', '#', 'set a=$a$a$a$a', 'function ', '(hd0)', '--id ', 'fi', 'then ', 'set timeout=x'];

const BLS_SEED = 'title Fedora\nversion 6.5.6-300.fc39\nlinux /vmlinuz-6.5\ninitrd /initramfs.img\noptions root=UUID=1 ro\nsort-key fedora\n';
const BLS_TOKENS = ['title ', 'version ', '~', '.', '1', 'a', 'linux ', 'initrd ', 'options ', '\n', ' ', '#', 'sort-key ', 'machine-id '];

const EXTLINUX_SEED = 'DEFAULT b\nTIMEOUT 30\nAPPEND console=ttyS0\nLABEL a\n MENU LABEL A\n KERNEL ../vmlinuz\n INITRD i1,i2\nLABEL b\n MENU DEFAULT\n LINUX /vmlinuz-b\n APPEND initrd=/x,/y root=/dev/vda\nINCLUDE more.cfg\n';
const EXTLINUX_TOKENS = ['LABEL ', 'KERNEL ', 'LINUX ', 'INITRD ', 'APPEND ', 'MENU LABEL ', 'MENU DEFAULT', 'DEFAULT ', '\n', ',', '-', 'initrd=', '../', ' '];

function mutate(rng: Rng, seed: string, tokens: readonly string[]): string {
  let s = seed;
  const rounds = 1 + rng.below(8);
  for (let r = 0; r < rounds; r++) {
    const at = rng.below(s.length + 1);
    switch (rng.below(6)) {
      case 0: s = s.slice(0, at) + s.slice(at + 1 + rng.below(16)); break;
      case 1: s = s.slice(0, at) + rng.pick(tokens) + s.slice(at); break;
      case 2: s = s.slice(0, at) + String.fromCharCode(rng.below(128)) + s.slice(at); break;
      case 3: { const len = rng.below(64); s = s.slice(0, at) + s.slice(at, at + len).repeat(1 + rng.below(4)) + s.slice(at); break; }
      case 4: s = s.slice(0, at) + String.fromCharCode(rng.below(0x3000)) + s.slice(at + 1); break;
      default: { let junk = ''; for (let i = rng.below(32); i > 0; i--) junk += rng.pick(tokens); s = s.slice(0, at) + junk + s.slice(at); }
    }
  }
  return s;
}

function checkMenu(menu: BootMenu): void {
  if (menu.entries.length > MAX_ENTRIES) throw new Error(`too many entries: ${menu.entries.length}`);
  if (menu.defaultIndex !== undefined && (menu.defaultIndex < 0 || menu.defaultIndex >= menu.entries.length)) {
    throw new Error(`default ${menu.defaultIndex} outside ${menu.entries.length} entries`);
  }
  for (const e of menu.entries) if (typeof e.title !== 'string' || typeof e.cmdline !== 'string') throw new Error('malformed entry');
}

/** Runs `parse` over mutated inputs; counts outcomes; any error but boot.config-corrupt fails the test. */
function campaign(seed: number, base: string, tokens: readonly string[], parse: (text: string) => BootMenu): { ok: number; refused: number } {
  const rng = new Rng(seed);
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const text = mutate(rng, base, tokens);
    try {
      checkMenu(parse(text));
      ok++;
    } catch (err) {
      if (!isVirtkitError(err, 'boot.config-corrupt')) {
        throw new Error(`iteration ${i}: ${String(err)}\ninput: ${JSON.stringify(text)}`, { cause: err });
      }
      refused++;
    }
  }
  return { ok, refused };
}

describe(`boot configuration parsers under ${ITERATIONS} mutated inputs each`, () => {
  it('GRUB: a menu or boot.config-corrupt', () => {
    const { ok, refused } = campaign(0x9e3779b9, GRUB_SEED, GRUB_TOKENS, (t) => parseGrubConfig(t));
    // Both outcomes occur, so the mutations reach past the tokenizer.
    expect(ok).toBeGreaterThan(ITERATIONS / 10);
    expect(refused).toBeGreaterThan(ITERATIONS / 20);
  });

  it('BLS entries and loader.conf: a menu or boot.config-corrupt', () => {
    const rng = new Rng(7);
    const { ok } = campaign(0x1234567, BLS_SEED, BLS_TOKENS, (t) => buildBlsMenu(
      [parseBlsEntry(t, 'x.conf'), parseBlsEntry(mutate(rng, BLS_SEED, BLS_TOKENS), 'y.conf')],
      parseLoaderConf(`default ${mutate(rng, '*x*', ['*', '?', '[', ']', '!', 'x', 'y'])}\n`),
    ));
    // Only entries naming too many initrds are refused.
    expect(ok).toBeGreaterThan(ITERATIONS * 0.9);
  });

  it('extlinux: a menu or boot.config-corrupt', () => {
    const { ok } = campaign(0xdeadbeef, EXTLINUX_SEED, EXTLINUX_TOKENS, (t) => parseExtlinuxConfig(t, '/boot/extlinux/extlinux.conf'));
    expect(ok).toBeGreaterThan(ITERATIONS * 0.9);
  });

  it('refuses configurations above the size limit before parsing', () => {
    const huge = 'x'.repeat(1024 * 1024 + 1);
    for (const parse of [parseGrubConfig, (t: string) => parseExtlinuxConfig(t), (t: string) => buildBlsMenu([parseBlsEntry(t, 'a.conf')])]) {
      expect(() => parse(huge)).toThrow(expect.objectContaining({ code: 'boot.config-corrupt' }) as Error);
    }
  });

  it('version comparison and globs stay consistent and fast on random strings', () => {
    const rng = new Rng(42);
    const alphabet = ['1', '2', '0', 'a', 'b', '.', '-', '~', '*', '?', '[', ']', '!'];
    const word = (n: number): string => Array.from({ length: rng.below(n) }, () => rng.pick(alphabet)).join('');
    for (let i = 0; i < ITERATIONS; i++) {
      const a = word(24);
      const b = word(24);
      const ab = compareVersions(a, b);
      const ba = compareVersions(b, a);
      if (Math.sign(ab) !== -Math.sign(ba)) throw new Error(`compareVersions not antisymmetric: ${a} ${b}`);
      matchesGlob(word(40), word(200));
    }
  });
});
