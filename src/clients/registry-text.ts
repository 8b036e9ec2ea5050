import { isDeepStrictEqual } from 'node:util';
import { isMap, isSeq, parseDocument, type Document, type YAMLMap } from 'yaml';

/**
 * Every document here was parsed from a registry whose aliases parseYamlText has already bounded,
 * or rendered from one: yaml's own limit (100 uses of an anchor) would refuse a legitimate file.
 */
const ALL_ALIASES = { maxAliasCount: -1 } as const;

/** One entry of the `clients` list, and where it sits in the text it was parsed from. */
interface EntrySpan {
  node: YAMLMap;
  /** Offset of the entry's first key, just after its `- `. */
  start: number;
  /** Offset just past the entry's last line. */
  end: number;
}

/** A registry's text as read, with its entries, so an edit can leave every other byte alone. */
export interface RegistrySource {
  text: string;
  entries: readonly (EntrySpan & { value: unknown })[];
}

/**
 * Notes where each entry of a freshly parsed registry sits. Undefined when the list is not the
 * usual block list of block mappings (`clients: [...]`, for one): such a file is re-rendered whole.
 */
export function registrySource(doc: Document, text: string): RegistrySource | undefined {
  const entries = entrySpans(doc, text);
  return entries && { text, entries: entries.map((e) => ({ ...e, value: e.node.toJS(doc, ALL_ALIASES) as unknown })) };
}

/**
 * The edited registry as the original text with only the changed entries replaced: `rendered`
 * (yaml's rendering of the whole edited document) restyles everything it touches, aligned
 * comments and `{ a: b }` padding included, so entries the edit left alone are taken from the
 * original text instead. Entries that were removed go with the comments just above them, as
 * yaml itself does; added ones go after the last entry. Undefined when the edit does not fit
 * that shape, or the result would not mean exactly what `rendered` means: then `rendered` it is.
 * Entries in `touched` are taken from `rendered` even when they mean what they meant (an alias
 * replaced by its own copy of the same value).
 */
export function keepUntouchedEntries(source: RegistrySource, doc: Document, rendered: string, touched: ReadonlySet<unknown> = new Set()): string | undefined {
  const seq = doc.get('clients', true);
  const renderedDoc = parseDocument(rendered);
  const renderedEntries = entrySpans(renderedDoc, rendered);
  const { text, entries } = source;
  if (!isSeq(seq) || renderedEntries === undefined || renderedEntries.length !== seq.items.length || entries.length === 0) return undefined;

  const edits: { from: number; to: number; text: string }[] = [];
  const indexOf = new Map<unknown, number>(entries.map((e, i) => [e.node, i]));
  const kept = seq.items.map((node) => indexOf.get(node) ?? -1);
  const lastKept = kept.reduce((last, i, k) => (i >= 0 ? k : last), -1);
  // Entries only ever change in place, go, or come at the end: anything else is re-rendered.
  if (kept.slice(0, lastKept).includes(-1)) return undefined;
  for (let k = 0, previous = -1; k < kept.length; k++) {
    const i = kept[k]!;
    if (i < 0) continue;
    if (i < previous) return undefined;
    previous = i;
    const was = entries[i]!;
    if (!touched.has(was.node) && isDeepStrictEqual(was.node.toJS(doc, ALL_ALIASES), was.value)) continue;
    const now = renderedEntries[k]!;
    const entryText = reindent(rendered.slice(now.start, now.end), column(text, was.start) - column(rendered, now.start), false);
    if (entryText === undefined) return undefined;
    edits.push({ from: was.start, to: was.end, text: entryText });
  }
  entries.forEach((e, i) => {
    if (kept.includes(i)) return;
    edits.push(i > 0 ? { from: entries[i - 1]!.end, to: e.end, text: '' } : { from: lineStart(text, e.start), to: e.end, text: '' });
  });
  if (lastKept < kept.length - 1) {
    if (lastKept < 0) return undefined;
    const after = renderedEntries[lastKept]!;
    const added = reindent(
      rendered.slice(after.end, renderedEntries.at(-1)!.end),
      column(text, entries[kept[lastKept]!]!.start) - column(rendered, after.start),
      true,
    );
    if (added === undefined) return undefined;
    edits.push({ from: entries.at(-1)!.end, to: entries.at(-1)!.end, text: added });
  }

  let out = text;
  for (const edit of edits.sort((a, b) => b.from - a.from)) out = out.slice(0, edit.from) + edit.text + out.slice(edit.to);
  const check = parseDocument(out);
  return check.errors.length === 0 && isDeepStrictEqual(check.toJS(ALL_ALIASES), renderedDoc.toJS(ALL_ALIASES)) ? out : undefined;
}

function entrySpans(doc: Document, text: string): EntrySpan[] | undefined {
  const seq = doc.get('clients', true);
  if (!isSeq(seq) || seq.flow) return undefined;
  const spans: EntrySpan[] = [];
  for (const node of seq.items) {
    if (!isMap(node) || node.flow || !node.range) return undefined;
    const [start, , end] = node.range;
    if (!/^ *- +$/.test(text.slice(lineStart(text, start), start))) return undefined;
    if (end < text.length && text[end - 1] !== '\n') return undefined;
    spans.push({ node, start, end });
  }
  return spans;
}

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

function column(text: string, offset: number): number {
  return offset - lineStart(text, offset);
}

/** Shifts lines by `delta` spaces (the first one too, or not); undefined when a line has too few to remove. */
function reindent(block: string, delta: number, firstLine: boolean): string | undefined {
  if (delta === 0) return block;
  const lines = block.split('\n');
  for (let i = firstLine ? 0 : 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    if (delta > 0) lines[i] = ' '.repeat(delta) + line;
    else if (line.startsWith(' '.repeat(-delta))) lines[i] = line.slice(-delta);
    else return undefined;
  }
  return lines.join('\n');
}
