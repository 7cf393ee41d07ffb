/**
 * What a machine type brings with it, as far as the command line cares: the buses that the
 * built-in devices and virtkit's own controllers hang on.
 */

/** The x86 PC machines: `pc`, `q35` and the versioned `pc-i440fx-7.2`, `pc-q35-7.2`, `pc-1.0`... */
function isPc(machine: string): boolean {
  return machine === 'pc' || machine === 'q35' || machine.startsWith('pc-');
}

/** Machines with an ISA bus, where the pvpanic device (crash detection) lives. */
export function hasIsaBus(machine: string): boolean {
  return isPc(machine);
}

/** Machines with a PCI bus that takes hot-plugged devices (the virtio-scsi controller, NICs). */
export function hasPciBus(machine: string): boolean {
  return isPc(machine);
}

export interface IdeLayout {
  /** How many ide disks fit (0: the machine has no IDE controller). */
  slots: number;
  /** The bus and unit of the ide disk in slot `slot` (0 to slots - 1). */
  slot(slot: number): { bus: string; unit: number };
}

/** pc (i440fx) has two IDE buses with two units each; q35 has six AHCI ports of one unit. */
export function ideLayout(machine: string): IdeLayout {
  if (machine === 'q35' || machine.startsWith('pc-q35')) return { slots: 6, slot: (n) => ({ bus: `ide.${n}`, unit: 0 }) };
  const i440fx = machine === 'pc' || machine.startsWith('pc-i440fx') || /^pc-[0-9]/.test(machine);
  if (i440fx) return { slots: 4, slot: (n) => ({ bus: `ide.${n >> 1}`, unit: n & 1 }) };
  return { slots: 0, slot: () => ({ bus: 'ide.0', unit: 0 }) };
}
