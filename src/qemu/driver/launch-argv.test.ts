import { describe, expect, it } from 'vitest';
import { launchArgv } from './launch-argv.js';

const prepared = [
  '-trace', 'qemu_system_shutdown_request', '-nodefaults',
  '-chardev', 'socket,id=qmp,path=/run/g/qmp.sock,server=on,wait=off',
  '-mon', 'chardev=qmp,mode=control',
  '-chardev', 'socket,id=console,path=/run/g/console.sock,server=on,wait=off,logfile=/run/g/console.log,logappend=on',
  '-serial', 'chardev:console',
];

describe('launchArgv', () => {
  it('adds -S only when the CPUs must wait, and leaves the rest as prepared', () => {
    expect(launchArgv(prepared, { holdCpus: false, consoleFirst: false })).toEqual({ argv: prepared, consoleHeld: false });
    expect(launchArgv(prepared, { holdCpus: true, consoleFirst: false }).argv).toEqual(['-S', ...prepared]);
  });

  it('keeps a -S the command line already has (qemu.args passthrough) and adds no second one', () => {
    const withS = [...prepared, '-S'];
    expect(launchArgv(withS, { holdCpus: true, consoleFirst: false }).argv.filter((a) => a === '-S')).toHaveLength(1);
  });

  it('makes the console socket, and only it, wait for its first client', () => {
    const { argv, consoleHeld } = launchArgv(prepared, { holdCpus: false, consoleFirst: true });
    expect(consoleHeld).toBe(true);
    expect(argv[8]).toBe('socket,id=console,path=/run/g/console.sock,server=on,wait=on,logfile=/run/g/console.log,logappend=on');
    expect(argv[4]).toBe(prepared[4]); // QMP still never waits
    expect(argv.filter((a, i) => a !== prepared[i])).toHaveLength(1);
  });

  it('reads the option by its parts: a doubled comma in a path is not a separator', () => {
    const tricky = ['-chardev', 'socket,id=console,path=/run/a,,wait=off/console.sock,server=on,wait=off'];
    expect(launchArgv(tricky, { holdCpus: false, consoleFirst: true }).argv[1]).toBe('socket,id=console,path=/run/a,,wait=off/console.sock,server=on,wait=on');
  });

  it('holds no console when the command line has none (serial: false)', () => {
    const none = prepared.slice(0, 7);
    expect(launchArgv(none, { holdCpus: false, consoleFirst: true })).toEqual({ argv: none, consoleHeld: false });
  });
});
