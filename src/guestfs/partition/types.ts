/** What a partition table reader reports: partitions as byte ranges of the disk. */
export const PartitionTableTypes = ['mbr', 'gpt', 'none'] as const;
export type PartitionTableType = (typeof PartitionTableTypes)[number];

export const PartitionKinds = ['primary', 'extended', 'logical', 'gpt', 'whole-disk'] as const;
export type PartitionKind = (typeof PartitionKinds)[number];

export interface Partition {
  /** 1-based, as Linux numbers them: MBR primaries 1-4, logicals from 5; GPT by entry index. */
  readonly number: number;
  readonly kind: PartitionKind;
  /** Byte offset of the first byte on the disk. */
  readonly start: number;
  /** Length in bytes. */
  readonly size: number;
  /** MBR: the type byte as `0x83`; GPT: the partition type GUID. */
  readonly type: string;
  /** A short human name for well-known types (`linux`, `efi-system`, ...). */
  readonly typeName?: string;
  /** GPT partition name. */
  readonly name?: string;
  /** GPT unique partition GUID. */
  readonly uuid?: string;
  readonly bootable?: boolean;
}

export interface PartitionTable {
  readonly type: PartitionTableType;
  readonly sectorSize: number;
  /** GPT disk GUID or the MBR disk signature as 8 hex digits. */
  readonly diskId?: string;
  readonly partitions: readonly Partition[];
  /** Damage that was worked around, e.g. a GPT read from its backup header. */
  readonly warnings: readonly string[];
}
