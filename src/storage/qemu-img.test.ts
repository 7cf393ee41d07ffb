import { describe, expect, it } from 'vitest';
import { isVirtkitError } from '../util/errors.js';
import { fileArg, parseConvertProgress, runQemuImg } from './qemu-img.js';

describe('qemu-img wrapper', () => {
  it('parses convert -p progress, keeping the last complete figure', () => {
    expect(parseConvertProgress('    (0.00/100%)\r    (12.50/100%)\r')).toBe(0.125);
    expect(parseConvertProgress('    (100.00/100%)\r\n')).toBe(1);
    expect(parseConvertProgress('garbage')).toBeNull();
  });

  it('hands qemu-img\'s stderr to the user verbatim in qemu-img.failed', async () => {
    const err = await runQemuImg(['info', '-f', 'qcow2', '/nonexistent/virtkit-test.qcow2']).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'qemu-img.failed')).toBe(true);
    expect((err as Error).message).toMatch(/^qemu-img: Could not open '\/nonexistent\/virtkit-test.qcow2'/);
    expect((err as { data: { exitCode: number } }).data.exitCode).toBe(1);
  });

  it('keeps file names from reading as options', () => {
    expect(fileArg('-rf.qcow2')).toBe('./-rf.qcow2');
    expect(fileArg('/abs/-x')).toBe('/abs/-x');
  });

  it('reports a missing binary as qemu.not-found', async () => {
    const err = await runQemuImg(['--version'], { binary: '/nonexistent/qemu-img' }).then(() => null, (e: unknown) => e);
    expect(isVirtkitError(err, 'qemu.not-found')).toBe(true);
  });
});
