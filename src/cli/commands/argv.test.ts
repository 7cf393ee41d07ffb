import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { runCli as run } from '../../../test/helpers/run-cli.js';
import { defaultRunDir, formatShellCommand, shellQuote } from './argv.js';

const dir = mkdtempSync(join(tmpdir(), 'virtkit-argv-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('shell form', () => {
  test('every argument survives a real shell, one option per line', () => {
    const argv = ['-name', 'guest=a', '-nodefaults', '-append', `it's "quoted" $HOME \`x\` \\ ;|&`, '-device', '{"driver":"x","a,b":"c d"}', '-S'];
    const text = formatShellCommand({ binary: 'qemu-system-x86_64', argv, env: { TMPDIR: "/tmp/a b'c" } });
    expect(text.split('\n')[2]).toBe('-name guest=a \\');
    // Replace the binary with printf and let sh parse what we printed.
    const script = text.replace('qemu-system-x86_64 \\', `sh -c 'printf "%s\\n" "$TMPDIR" "$@"' sh \\`);
    const result = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n').slice(0, -1)).toEqual(["/tmp/a b'c", ...argv]);
  });

  test('quoting is only added when needed', () => {
    expect(shellQuote('pc,accel=tcg')).toBe('pc,accel=tcg');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });

  test('the default run directory is where virtkit run puts it', () => {
    expect(defaultRunDir('web1', { XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/virtkit/run/virtkit-run-web1-XXXXXX');
    expect(defaultRunDir('web1', {})).toBe(join(tmpdir(), 'virtkit-run-web1-XXXXXX'));
  });
});

describe('virtkit argv', () => {
  const def = join(dir, 'g.yaml');
  writeFileSync(def, 'name: g\nmemory: 64MiB\naccel: tcg\nboot: {kernel: vmlinuz}\ndisks: [{volume: pool/root, format: qcow2}]\n');

  test('prints the command in shell form, paths resolved against the file', async () => {
    const { code, stdout } = await run(['argv', def, '--run-dir', '/run/g']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^qemu-system-x86_64 \\\n-nodefaults \\\n/);
    expect(stdout).toContain(`-kernel ${join(dir, 'vmlinuz')} \\\n`);
    expect(stdout).toContain('-chardev socket,id=qmp,path=/run/g/qmp.sock,server=on,wait=off \\\n');
    expect(stdout).toContain('<volume pool/root>');
  });

  test('--json gives binary, argv and env', async () => {
    const { code, stdout } = await run(['argv', def, '--json', '--run-dir', '/run/g', '--accel', 'kvm']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { binary: string; argv: string[]; env: object; accel: string };
    expect(out.binary).toBe('qemu-system-x86_64');
    expect(out.accel).toBe('kvm');
    expect(out.argv.slice(out.argv.indexOf('-machine'), out.argv.indexOf('-machine') + 4)).toEqual(['-machine', 'pc,accel=kvm', '-cpu', 'host']);
    expect(out.env).toEqual({});
  });

  test('an invalid definition exits 5 with the field path', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: g\nmemory: 1KiB\n');
    const { code, stderr } = await run(['argv', bad]);
    expect(code).toBe(5);
    expect(stderr).toContain('definition.invalid: memory: must be at least 16MiB, got "1KiB"');
  });

  test('a missing file exits 3', async () => {
    expect((await run(['argv', join(dir, 'absent.yaml')])).code).toBe(3);
  });
});
