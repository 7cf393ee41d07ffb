/** The XML reader's refusals and decoding, libvirt's units, and the format detection rule. */
import { describe, expect, it } from 'vitest';
import { VirtkitError } from '../../util/errors.js';
import { detectFormat } from '../index.js';
import { LibvirtUnits, scaledBytes, unitScale } from './units.js';
import { MaxXmlBytes, readXml } from './xml-reader.js';

function refusal(fn: () => unknown): VirtkitError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VirtkitError) return err;
    throw err;
  }
  throw new Error('expected a typed error');
}

describe('readXml', () => {
  it('decodes the built-in entities, character references and CDATA, and keeps XPaths and positions', () => {
    const root = readXml('<domain>\n  <name a="&quot;x&apos;">a&amp;b&#65;&#x42;<![CDATA[<c>&amp;]]></name>\n  <devices><disk/><disk/></devices>\n</domain>');
    const name = root.children[0];
    expect(name?.text).toBe('a&bAB<c>&amp;');
    expect(name?.attrs.get('a')).toBe('"x\'');
    expect(name?.line).toBe(2);
    expect(root.children[1]?.children.map((c) => c.xpath)).toEqual(['/domain/devices/disk[1]', '/domain/devices/disk[2]']);
  });

  it('refuses declarations and unknown entities, but not the words inside a comment', () => {
    expect(refusal(() => readXml('<!DOCTYPE d><d/>')).code).toBe('definition.xml-refused');
    expect(refusal(() => readXml('<d>&ext;</d>')).message).toMatch(/&ext; is refused/);
    expect(refusal(() => readXml('<d a="&#0;"/>')).message).toMatch(/not an XML character/);
    expect(readXml('<!-- <!DOCTYPE x> --><d><![CDATA[<!ENTITY y>]]></d>').text).toBe('<!ENTITY y>');
  });

  it('names the line and column of malformed XML, and refuses two roots, depth and size', () => {
    const e = refusal(() => readXml('<d>\n  <e></d>'));
    expect(e.code).toBe('definition.invalid');
    expect(e.data).toMatchObject({ line: 2 });
    expect(refusal(() => readXml('<a/><b/>')).message).toMatch(/exactly one root element/);
    expect(refusal(() => readXml(`${'<a>'.repeat(100)}${'</a>'.repeat(100)}`)).code).toBe('definition.xml-refused');
    expect(refusal(() => readXml(`<a>${' '.repeat(MaxXmlBytes)}</a>`)).code).toBe('definition.xml-refused');
  });
});

describe('libvirt units', () => {
  it('reads every unit libvirt documents, case-insensitively', () => {
    const expected: Record<string, bigint> = { b: 1n, bytes: 1n, KB: 1000n, k: 1024n, KiB: 1024n, MB: 10n ** 6n, M: 2n ** 20n, MiB: 2n ** 20n,
      GB: 10n ** 9n, G: 2n ** 30n, GiB: 2n ** 30n, TB: 10n ** 12n, T: 2n ** 40n, TiB: 2n ** 40n, PB: 10n ** 15n, P: 2n ** 50n, PiB: 2n ** 50n,
      EB: 10n ** 18n, E: 2n ** 60n, EiB: 2n ** 60n };
    for (const unit of LibvirtUnits) {
      expect(unitScale(unit), unit).toBe(expected[unit]);
      expect(unitScale(unit.toLowerCase()), unit).toBe(expected[unit]);
    }
    expect(unitScale('KiBs')).toBeUndefined();
    expect(scaledBytes('512', undefined, 'KiB', '/domain/memory')).toBe(512 * 1024);
  });

  it('refuses overflow and non-numbers naming the XPath', () => {
    expect(refusal(() => scaledBytes('8', 'EiB', 'KiB', '/domain/memory')).message).toMatch(/^\/domain\/memory: 8 EiB overflows/);
    expect(refusal(() => scaledBytes('-1', 'KiB', 'KiB', '/domain/memory')).message).toMatch(/whole number/);
    expect(refusal(() => scaledBytes('1', 'parsec', 'KiB', '/domain/memory')).data).toMatchObject({ xpath: '/domain/memory/@unit' });
  });
});

describe('detectFormat', () => {
  it('tells libvirt XML, JSON, xm and YAML apart by content', () => {
    expect(detectFormat('\uFEFF  \n<domain/>')).toBe('libvirt');
    expect(detectFormat('{"name": "x"}')).toBe('json');
    expect(detectFormat('# xm\n\nname = "x"\nmemory = 256\n')).toBe('xm');
    expect(detectFormat('name: x\nmemory: 256MiB\n')).toBe('yaml');
    expect(detectFormat('memory == 2')).toBe('yaml');
  });
});

describe('large documents', () => {
  it('imports a quarter megabyte of small elements in bounded time, reporting them, not hanging', async () => {
    const { importLibvirtXml } = await import('./import.js');
    const many = `<domain type='qemu'><name>m</name><memory unit='MiB'>64</memory>\n${'<x/>\n'.repeat(50_000)}</domain>`;
    let error: VirtkitError | undefined;
    try {
      importLibvirtXml(many);
    } catch (err) {
      if (err instanceof VirtkitError) error = err;
    }
    expect(error?.code).toBe('definition.unsupported');
    expect((error?.data?.['unsupported'] as unknown[]).length).toBe(50_000);
  }, 30_000);
});

describe('long lists', () => {
  it('caps the message and the notes, keeping the count', async () => {
    const { importLibvirtXml } = await import('./import.js');
    const doc = `<domain type='qemu'><name>m</name><memory unit='MiB'>64</memory>${'<x/>'.repeat(2000)}</domain>`;
    const lenient = importLibvirtXml(doc, { lenient: true });
    const notes = lenient.definition['notes'] as string[];
    expect(notes).toHaveLength(1024);
    // 2000 elements and the warning that ACPI was absent: 1023 listed, 978 counted.
    expect(notes[1023]).toBe('... and 978 more not honoured');
    try {
      importLibvirtXml(doc);
    } catch (err) {
      expect((err as VirtkitError).message).toMatch(/\.\.\. and 1900 more \(all in data\.unsupported\)$/);
    }
  });
});
