import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type Problem } from './config-error.js';
import { permissionProblem } from './file-access.js';

export type DocPath = readonly (string | number)[];

/** A YAML file read for validation: its plain value, plus line numbers for error messages. */
export interface YamlFile {
  file: string;
  /** The text as read: the document's node ranges are offsets into it. */
  text: string;
  doc: Document;
  value: unknown;
  lineOf(path: DocPath): number | undefined;
}

/** Reads and parses a YAML file; a missing file or a syntax error is a ConfigError. */
export function readYamlFile(file: string, shownAs = file): YamlFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'file not found'
        : (permissionProblem(err, 'read') ?? `cannot read: ${(err as Error).message}`);
    throw ConfigError.single(shownAs, reason);
  }
  return parseYamlText(text, shownAs);
}

export function parseYamlText(text: string, file: string): YamlFile {
  const lineCounter = new LineCounter();
  // uniqueKeys (the default) makes a key written twice a syntax error rather than a silent override.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        path: '',
        line: lineCounter.linePos(e.pos[0]).line,
        message: `YAML syntax: ${e.message}`,
      })),
    );
  }
  const lineOf = (path: DocPath): number | undefined => {
    // Walk as far down the path as the document goes, so an error about a missing or unknown
    // field still points at the nearest enclosing node.
    for (let n = path.length; n >= 0; n--) {
      const node = path.length === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { file, text, doc, value: doc.toJS({ maxAliasCount: 50 }) ?? {}, lineOf };
}

/** `clients[0].secrets[1].hash` from zod's path array. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** Turns zod's issues into problems that name the file, the path and the line. */
export function zodProblems(error: z.ZodError, source: Pick<YamlFile, 'file' | 'lineOf'>): Problem[] {
  const problem = (path: PropertyKey[], message: string): Problem => {
    const docPath = path.filter((p): p is string | number => typeof p !== 'symbol');
    return { file: source.file, path: formatPath(path), line: source.lineOf(docPath), message };
  };
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? // One problem per unknown key, pointing at the key itself: "clients[0].secret: unknown field".
        issue.keys.map((key) => problem([...issue.path, key], 'unknown field'))
      : [problem(issue.path as PropertyKey[], issue.message)],
  );
}
