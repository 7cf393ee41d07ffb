import { describe, expect, it } from 'vitest';
import { hmpErrorOf } from './monitor.js';

describe('hmpErrorOf', () => {
  it('recognises the ways QEMU 7.2\'s HMP words a failure', () => {
    expect(hmpErrorOf('unknown command: \'bogus\'\r\n')).toBe('unknown command: \'bogus\'');
    expect(hmpErrorOf('unknown command: \'info bogus\'\r\n')).toBe('unknown command: \'info bogus\'');
    expect(hmpErrorOf('Error: Device \'nosuch\' not found\r\n')).toBe('Error: Device \'nosuch\' not found');
    expect(hmpErrorOf('Could not open \'/x.qcow2\'\r\n')).toBe('Could not open \'/x.qcow2\'');
    expect(hmpErrorOf('Device \'nosuch\' not found\r\n')).toBe('Device \'nosuch\' not found');
    expect(hmpErrorOf('Path \'/nosuch\' could not be resolved.\r\n')).toBe('Path \'/nosuch\' could not be resolved.');
    expect(hmpErrorOf('unknown event "nosuch"\r\n')).toBe('unknown event "nosuch"');
    expect(hmpErrorOf('invalid parameter: bogus\r\n')).toBe('invalid parameter: bogus');
    // argument parse errors: the message, without the usage hint
    expect(hmpErrorOf('invalid char \'z\' in expression\r\nTry "help o" for more information\r\n')).toBe('invalid char \'z\' in expression');
    expect(hmpErrorOf('print|p: extraneous characters at the end of line\r\nTry "help p" for more information\r\n'))
      .toBe('print|p: extraneous characters at the end of line');
  });

  it('passes normal answers, empty ones included', () => {
    for (const ok of [
      '', '\r\n', 'VM status: paused (prelaunch)\r\n', 'VM status: running\r\n', '7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3\r\n',
      '* CPU #0: thread_id=2847\r\n', 'disk0 (#block163): /tmp/g/rootfs.qcow2 (qcow2)\r\n    Attached to:      /machine/peripheral/disk0/virtio-backend\r\n',
      'info balloon  -- show balloon information\r\n', '\r\nCPU#0\r\nEAX=00000000 EBX=00000000\r\n',
    ]) {
      expect(hmpErrorOf(ok)).toBeUndefined();
    }
  });
});
