import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

// What the documentation tests read from the Markdown: fenced shell blocks (to run them) and
// relative links (to follow them). A small line parser, not a Markdown library: the docs keep to
// plain fences and inline links.

export const ROOT = resolve(import.meta.dirname, '../..');

/** README.md, bench/README.md and every page under docs/, as paths relative to the root. */
export function docFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
    );
  return ['README.md', 'bench/README.md', ...walk('docs').sort()];
}

export const SHELL_LANGUAGES: ReadonlySet<string> = new Set(['sh', 'bash', 'shell']);

/** `<!-- not-run: reason -->` on the line before a shell fence keeps that block from being run. */
const NOT_RUN = /^\s*<!--\s*not-run:\s*(.*?)\s*-->\s*$/;
const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;

export interface ShellBlock {
  /** file:line of the opening fence, for messages. */
  where: string;
  code: string;
}

export interface ExcludedBlock {
  where: string;
  reason: string;
}

export interface FileBlocks {
  run: ShellBlock[];
  excluded: ExcludedBlock[];
}

/**
 * The shell blocks of one Markdown text, in order, split into those to run and those a
 * `not-run` marker excludes. Throws on what would make a block silently vanish or run wrongly:
 * an unclosed fence, a marker without a reason, a marker that is not right before a shell block.
 */
export function shellBlocks(file: string, text: string): FileBlocks {
  const lines = text.split('\n');
  const result: FileBlocks = { run: [], excluded: [] };
  let marker: { reason: string; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const notRun = NOT_RUN.exec(line);
    if (notRun) {
      if (notRun[1] === '') throw new Error(`${file}:${i + 1}: a not-run marker must say why (<!-- not-run: needs docker -->)`);
      marker = { reason: notRun[1]!, line: i + 1 };
      continue;
    }
    const open = FENCE.exec(line);
    if (!open) {
      if (marker && line.trim() !== '') throw new Error(`${file}:${marker.line}: a not-run marker must be followed by a sh, bash or shell block`);
      continue;
    }
    const [, indent, fence, language] = open as unknown as [string, string, string, string];
    const start = i;
    const body: string[] = [];
    for (i++; ; i++) {
      if (i >= lines.length) throw new Error(`${file}:${start + 1}: the code block is never closed`);
      const l = lines[i]!;
      if (l.trim().startsWith(fence[0]!.repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    const where = `${file}:${start + 1}`;
    if (!SHELL_LANGUAGES.has(language.toLowerCase())) {
      if (marker) throw new Error(`${file}:${marker.line}: a not-run marker must be followed by a sh, bash or shell block, not ${language || 'a plain'} block`);
      continue;
    }
    if (marker) result.excluded.push({ where, reason: marker.reason });
    else result.run.push({ where, code: body.join('\n') });
    marker = undefined;
  }
  return result;
}

export interface Link {
  where: string;
  target: string;
}

/** Inline links and images outside code: `[text](target)`, `<img src>` is not used in the docs. */
export function links(file: string, text: string): Link[] {
  const found: Link[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const open = FENCE.exec(line);
    if (open) {
      const mark = open[2]!;
      if (fence === undefined) fence = mark[0]!.repeat(mark.length);
      else if (line.trim().startsWith(fence)) fence = undefined;
      return;
    }
    if (fence !== undefined) return;
    // Code spans hold things like `[a](b)` that are not links.
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) found.push({ where: `${file}:${i + 1}`, target: m[1]! });
  });
  return found;
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to dashes. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence: string | undefined;
  for (const line of text.split('\n')) {
    const open = FENCE.exec(line);
    if (open) {
      const mark = open[2]!;
      if (fence === undefined) fence = mark[0]!.repeat(mark.length);
      else if (line.trim().startsWith(fence)) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]!
      .replace(/<[^>]+>/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

export function read(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8');
}

export function fromRoot(path: string): string {
  return relative(ROOT, path);
}
