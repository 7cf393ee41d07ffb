/**
 * A safe XML reader for libvirt domain documents: text in, a small element tree out, each
 * element knowing its XPath and its line and column.
 *
 * fast-xml-parser does the parsing; this module decides what it is allowed to see. A domain
 * document never needs a DTD or an entity, and each is a way to attack the reader (billion
 * laughs, external entities fetching files), so a document with a `<!DOCTYPE`, an `<!ENTITY`
 * or a reference to any entity beyond XML's five built-ins is refused before anything is
 * parsed, and the parser itself is told to expand nothing. Size and depth are bounded.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { VirtkitError } from '../../util/errors.js';
import { codePointName, firstNonXmlChar, isXmlChar } from './xml-chars.js';

/** A libvirt domain document is a few KiB; a megabyte of whitespace would still fit. */
export const MaxXmlBytes = 4 * 1024 * 1024;
/** libvirt's deepest domain element is about 6 levels down (`/domain/devices/disk/source/auth/secret`). */
export const MaxXmlDepth = 32;

export interface XmlElement {
  /** The name as written, prefix included (`qemu:arg`). */
  readonly name: string;
  /** Attribute values, entity and character references decoded; `xmlns` declarations included. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** The element's own text (character data and CDATA of its direct children), decoded. */
  readonly text: string;
  /** `/domain/devices/disk[2]/source`: see `xpathStep` for when an index is written. */
  readonly xpath: string;
  readonly line: number;
  readonly column: number;
}

export interface TextPosition {
  line: number;
  column: number;
}

/** Where a character offset is, 1-based, as editors count. */
export function positionAt(text: string, offset: number): TextPosition {
  return new LineIndex(text).position(offset);
}

/** Offsets of line starts, found once: a position is then a binary search, not a scan of the text. */
class LineIndex {
  private readonly starts: number[] = [0];
  constructor(private readonly text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }

  position(offset: number): TextPosition {
    const at = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= at) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: at - (this.starts[lo] ?? 0) + 1 };
  }
}

function refused(text: string, offset: number, what: string): VirtkitError {
  const at = positionAt(text, offset);
  return new VirtkitError('definition.xml-refused', `line ${at.line}, column ${at.column}: ${what}`, { ...at, rule: 'xml-safety' });
}

/**
 * Refuse declarations (`<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`...) outside comments and CDATA
 * sections. A scan of our own, so the refusal never depends on what the parser would do.
 */
function refuseDeclarations(text: string): void {
  let i = text.indexOf('<!');
  while (i !== -1) {
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) return; // unterminated: the validator names it
      i = text.indexOf('<!', end + 3);
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      if (end === -1) return;
      i = text.indexOf('<!', end + 3);
    } else {
      const word = /^<!([A-Za-z]*)/.exec(text.slice(i, i + 16))?.[1] ?? '';
      throw refused(text, i, `<!${word}> is refused: virtkit reads no DTD and expands no entity (a domain document needs neither)`);
    }
  }
}

const BuiltinEntities: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: '\'' };

/** Not well-formed XML, placed at `offset`: the same error whether the parser or this reader finds it. */
function malformed(text: string, offset: number, what: string): VirtkitError {
  const at = positionAt(text, offset);
  return new VirtkitError('definition.invalid', `line ${at.line}, column ${at.column}: invalid XML: ${what}`, { path: 'definition', rule: 'syntax', ...at });
}

/**
 * Decode the five built-in entities and character references; any other reference is an
 * entity this reader will not expand. `offset` is where the element starts: an error points
 * at the reference itself, the first such text from there on.
 */
function decodeReferences(raw: string, source: string, offset: number): string {
  if (!raw.includes('&')) return raw;
  const at = (match: string): number => {
    const found = source.indexOf(match, offset);
    return found === -1 ? offset : found;
  };
  return raw.replace(/&([^;&\s]{0,32});?/g, (match, body: string) => {
    if (!match.endsWith(';')) throw malformed(source, at(match), `a bare "&" is not XML (write &amp;)`);
    const builtin = BuiltinEntities[body];
    if (builtin !== undefined) return builtin;
    const numeric = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (numeric !== null) {
      const code = numeric[1] !== undefined ? parseInt(numeric[1], 16) : Number(numeric[2]);
      if (!isXmlChar(code)) throw malformed(source, at(match), `character reference &${body}; is not an XML character (${codePointName(code)}: XML 1.0 has no form for it, raw or referenced)`);
      return String.fromCodePoint(code);
    }
    throw refused(source, at(match), `entity reference &${body}; is refused: only &amp; &lt; &gt; &quot; &apos; and character references are read`);
  });
}

/** A raw character XML 1.0 does not allow (ESC, BEL, ...): refused as a reference to it is. */
function refuseNonXmlChars(text: string): void {
  const i = firstNonXmlChar(text);
  if (i !== -1) throw malformed(text, i, `character ${codePointName(text.codePointAt(i) ?? 0)} is not an XML character (XML 1.0 has no form for it, raw or referenced)`);
}

/**
 * The encoding a document declares must be UTF-8: the text reached here decoded as UTF-8,
 * so a document that says UTF-16 or Latin-1 would be read as something it does not say.
 */
function refuseOtherEncodings(text: string): void {
  const decl = /^\uFEFF?<\?xml\s[^?]*?encoding\s*=\s*(["'])([^"']*)\1/.exec(text);
  const encoding = decl?.[2];
  if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) {
    throw malformed(text, text.indexOf(encoding), `encoding ${JSON.stringify(encoding.slice(0, 40))} is not read: virtkit reads UTF-8 documents only (convert with iconv -t UTF-8 and change the declaration)`);
  }
}

/**
 * Where nesting first goes deeper than `max`: a scan of tags that skips comments, CDATA,
 * processing instructions and quoted attribute values. Run only on a document the
 * validator accepted, to place the depth error.
 */
function firstTooDeep(text: string, max: number): number {
  let depth = 0;
  let i = text.indexOf('<');
  while (i !== -1) {
    const skipTo = text.startsWith('<!--', i) ? text.indexOf('-->', i) : text.startsWith('<![CDATA[', i) ? text.indexOf(']]>', i) : text.startsWith('<?', i) ? text.indexOf('?>', i) : undefined;
    if (skipTo !== undefined) {
      if (skipTo === -1) return -1;
      i = text.indexOf('<', skipTo);
      continue;
    }
    let j = i + 1;
    let quote = '';
    for (; j < text.length; j += 1) {
      const ch = text[j];
      if (quote !== '') { if (ch === quote) quote = ''; } else if (ch === '"' || ch === '\'') quote = ch;
      else if (ch === '>') break;
    }
    if (text[i + 1] === '/') depth -= 1;
    else if (text[j - 1] !== '/') {
      depth += 1;
      if (depth > max) return i;
    }
    i = text.indexOf('<', j);
  }
  return -1;
}

type OrderedNode = Record<string, unknown>;

const AttrKey = ':@';
const TextKey = '#text';
const CdataKey = '#cdata';
const CommentKey = '#comment';
const Meta = XMLParser.getMetaDataSymbol() as unknown as string;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: AttrKey,
  textNodeName: TextKey,
  cdataPropName: CdataKey,
  commentPropName: CommentKey,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  allowBooleanAttributes: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  captureMetaData: true,
  maxNestedTags: MaxXmlDepth,
});

function elementNameOf(node: OrderedNode): string | undefined {
  return Object.keys(node).find((k) => k !== AttrKey && k !== TextKey && k !== CdataKey && k !== CommentKey);
}

function startOf(node: OrderedNode): number {
  const meta = (node as Record<string, unknown>)[Meta] as { startIndex?: number } | undefined;
  return meta?.startIndex ?? 0;
}

/**
 * The step of an element in its XPath. An index is written for every child of `devices` and
 * of `qemu:commandline` (lists by nature) and wherever a name repeats among siblings; `[1]`
 * is then the first of that name, as XPath counts.
 */
function xpathStep(name: string, index: number, parentName: string, repeats: boolean): string {
  return repeats || parentName === 'devices' || parentName === 'qemu:commandline' ? `${name}[${index}]` : name;
}

interface Pending {
  node: OrderedNode;
  name: string;
  xpath: string;
  attach: (element: XmlElement) => void;
}

/**
 * Build the element tree without recursion (depth is bounded, but a loop costs nothing).
 * Children are attached in document order once each is complete.
 */
function buildTree(root: OrderedNode, rootName: string, source: string): XmlElement {
  let result: XmlElement | undefined;
  const lines = new LineIndex(source);
  const build = (item: Pending): void => {
    const content = (item.node[item.name] ?? []) as OrderedNode[];
    const rawAttrs = (item.node[AttrKey] ?? {}) as Record<string, string>;
    const start = startOf(item.node);
    const attrs = new Map<string, string>();
    for (const [key, value] of Object.entries(rawAttrs)) attrs.set(key, decodeReferences(String(value), source, start));
    let text = '';
    const childNodes: Array<{ node: OrderedNode; name: string }> = [];
    for (const child of content) {
      if (child[TextKey] !== undefined) text += decodeReferences(String(child[TextKey]), source, start);
      else if (child[CdataKey] !== undefined) {
        for (const part of child[CdataKey] as OrderedNode[]) text += String(part[TextKey] ?? '');
      } else if (child[CommentKey] === undefined) {
        const name = elementNameOf(child);
        if (name !== undefined) childNodes.push({ node: child, name });
      }
    }
    const counts = new Map<string, number>();
    for (const c of childNodes) counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
    const seen = new Map<string, number>();
    const children: XmlElement[] = [];
    const at = lines.position(start);
    const element: XmlElement = { name: item.name, attrs, children, text, xpath: item.xpath, line: at.line, column: at.column };
    item.attach(element);
    for (const c of childNodes) {
      const index = (seen.get(c.name) ?? 0) + 1;
      seen.set(c.name, index);
      const step = xpathStep(c.name, index, item.name, (counts.get(c.name) ?? 0) > 1);
      queue.push({ node: c.node, name: c.name, xpath: `${item.xpath}/${step}`, attach: (e) => children.push(e) });
    }
  };
  // Breadth first, in document order: each element is attached to its parent in the order found.
  const queue: Pending[] = [];
  build({ node: root, name: rootName, xpath: `/${rootName}`, attach: (e) => { result = e; } });
  for (let i = 0; i < queue.length; i += 1) {
    const next = queue[i];
    if (next !== undefined) build(next);
  }
  if (result === undefined) throw new VirtkitError('definition.invalid', 'definition: the XML document has no root element', { rule: 'syntax' });
  return result;
}

/**
 * Read an XML document into an element tree.
 * @throws VirtkitError('definition.xml-refused') for a DTD, an entity, too large or too deep a document,
 *         VirtkitError('definition.invalid') for text that is not well-formed XML (with line and column).
 */
export function readXml(text: string): XmlElement {
  if (text.length > MaxXmlBytes) {
    throw new VirtkitError('definition.xml-refused', `definition: an XML document may have at most ${MaxXmlBytes} characters, got ${text.length}`, { rule: 'size' });
  }
  refuseOtherEncodings(text);
  refuseNonXmlChars(text);
  refuseDeclarations(text);
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) {
    const { line, col, msg } = valid.err;
    throw new VirtkitError('definition.invalid', `line ${line}, column ${col}: invalid XML: ${msg}`, { path: 'definition', rule: 'syntax', line, column: col });
  }
  let parsed: OrderedNode[];
  try {
    parsed = parser.parse(text) as OrderedNode[];
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/nested tags/i.test(message)) {
      const at = positionAt(text, Math.max(0, firstTooDeep(text, MaxXmlDepth)));
      throw new VirtkitError('definition.xml-refused', `line ${at.line}, column ${at.column}: XML elements may nest at most ${MaxXmlDepth} deep`, { rule: 'depth', ...at });
    }
    throw new VirtkitError('definition.invalid', `definition: invalid XML: ${message}`, { path: 'definition', rule: 'syntax' });
  }
  const roots = parsed.filter((n) => elementNameOf(n) !== undefined && n[CommentKey] === undefined);
  if (roots.length !== 1 || roots[0] === undefined) {
    const second = roots[1];
    const at = second === undefined ? { line: 1, column: 1 } : positionAt(text, startOf(second));
    throw new VirtkitError('definition.invalid', `line ${at.line}, column ${at.column}: invalid XML: a document has exactly one root element, got ${roots.length}`, { path: 'definition', rule: 'syntax', ...at });
  }
  const root = roots[0];
  return buildTree(root, elementNameOf(root) ?? '', text);
}
