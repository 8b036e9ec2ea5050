import { readFileSync } from 'node:fs';
import { isAlias, isCollection, isNode, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type Problem } from './config-error.js';
import { didYouMean } from './did-you-mean.js';
import { permissionProblem } from './file-access.js';

export type DocPath = readonly (string | number)[];

/**
 * How many values aliases may add to a document, counted as if each alias were written out.
 * Aliases are legitimate YAML (51 clients sharing `audiences: *aud` is fine), but nested ones
 * grow exponentially ("billion laughs"): a few lines can stand for more values than validation
 * could walk in a day. A million is far beyond any real registry (10,000 clients each sharing
 * a 20-value anchor add 200,000). Measured: 9,000 clients sharing a 100-scope anchor (909,000
 * values) load in about 4 s, most of it parsing; the same 100 scopes written out in only 1,000
 * clients take 3 s. Aliases cost less than the text they stand for, up to this bound.
 */
export const MAX_ALIAS_EXPANSION = 1_000_000;

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
  let aliasProblem: ReturnType<typeof checkAliases>;
  let value: unknown;
  try {
    aliasProblem = checkAliases(doc);
    // checkAliases bounded what aliases expand to, so yaml's own guess (uses of an anchor times
    // the aliases inside it, at most 100) need not refuse a registry where many clients share one.
    if (aliasProblem === undefined) value = doc.toJS({ maxAliasCount: -1 });
  } catch (err) {
    // Nothing the file holds may escape as anything but a ConfigError: a reload would crash on it.
    throw ConfigError.single(file, `YAML: ${(err as Error).message}`);
  }
  if (aliasProblem !== undefined) {
    const line = aliasProblem.offset === undefined ? undefined : lineCounter.linePos(aliasProblem.offset).line;
    throw new ConfigError([{ file, path: '', line, message: aliasProblem.message }]);
  }
  return { file, text, doc, value: value ?? {}, lineOf };
}

/**
 * Walks the document once, in order, sizing each node as if its aliases were written out. An
 * alias to an anchor not yet defined, or to a node that contains it (a cycle), is a problem, as
 * is expanding to more than MAX_ALIAS_EXPANSION values beyond those written.
 */
function checkAliases(doc: Document): { message: string; offset?: number } | undefined {
  const sizes = new Map<string, number>();
  const open = new Set<string>();
  let written = 0;
  let problem: { message: string; offset?: number } | undefined;
  const size = (node: unknown): number => {
    if (problem !== undefined || node === null || node === undefined) return 0;
    if (isAlias(node)) {
      const n = sizes.get(node.source);
      if (n === undefined || open.has(node.source)) {
        const why = open.has(node.source) ? 'refers to a node that contains it' : `has no anchor &${node.source} before it`;
        problem = { message: `YAML: alias *${node.source} ${why}`, offset: node.range?.[0] };
        return 0;
      }
      return n;
    }
    if (isPair(node)) return size(node.key) + size(node.value);
    written++;
    const anchor = isNode(node) ? node.anchor : undefined;
    if (anchor !== undefined) open.add(anchor);
    const total = isCollection(node) ? node.items.reduce((sum: number, item) => sum + size(item), 1) : isScalar(node) ? 1 : 0;
    if (anchor !== undefined) {
      open.delete(anchor);
      sizes.set(anchor, total);
    }
    return total;
  };
  const total = size(doc.contents);
  if (problem === undefined && total - written > MAX_ALIAS_EXPANSION) {
    problem = { message: `YAML: its aliases expand to more than ${MAX_ALIAS_EXPANSION} values (an alias bomb?); write the repeated parts out or share fewer` };
  }
  return problem;
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

/**
 * Turns zod's issues into problems that name the file, the path and the line. With the schema,
 * an unknown field is told the known one it was most likely meant to be.
 */
export function zodProblems(error: z.ZodError, source: Pick<YamlFile, 'file' | 'lineOf'>, schema?: z.core.$ZodType): Problem[] {
  const problem = (path: PropertyKey[], message: string): Problem => {
    const docPath = path.filter((p): p is string | number => typeof p !== 'symbol');
    return { file: source.file, path: formatPath(path), line: source.lineOf(docPath), message };
  };
  return error.issues.flatMap((issue) => {
    if (issue.code !== 'unrecognized_keys') return [problem(issue.path as PropertyKey[], issue.message)];
    // One problem per unknown key, pointing at the key itself: "clients[0].secret: unknown field".
    const known = schema === undefined ? [] : fieldsAt(schema, issue.path as PropertyKey[]);
    return issue.keys.map((key) => {
      const meant = didYouMean(key, known);
      return problem([...issue.path, key], meant === undefined ? 'unknown field' : `unknown field (did you mean ${meant}?)`);
    });
  });
}

/** The fields of the mapping(s) at `path` in a schema: what an unknown field could have meant. */
function fieldsAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return fieldsAt(def.innerType as z.core.$ZodType, path);
    case 'pipe':
      return fieldsAt(def.in as z.core.$ZodType, path);
    case 'union':
      return (def.options as z.core.$ZodType[]).flatMap((o) => fieldsAt(o, path));
    case 'array':
      return typeof path[0] === 'number' ? fieldsAt(def.element as z.core.$ZodType, path.slice(1)) : [];
    case 'object': {
      const shape = def.shape as Record<string, z.core.$ZodType>;
      if (path.length === 0) return Object.keys(shape);
      const next = shape[String(path[0])];
      return next === undefined ? [] : fieldsAt(next, path.slice(1));
    }
    default:
      return [];
  }
}

/**
 * Plain words for zod's own messages ("Invalid input: expected string, received number" becomes
 * "must be a string"). Passed to safeParse as its error map: a message a schema gives itself wins.
 */
export const plainMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `${issue.input === null ? 'is empty: it ' : ''}must be ${KINDS[issue.expected] ?? `a ${issue.expected}`}`;
    case 'too_small': {
      const n = Number(issue.minimum);
      if (issue.origin === 'number' || issue.origin === 'bigint') return issue.inclusive === false ? `must be more than ${n}` : `must be at least ${n}`;
      if (n <= 1) return 'must not be empty';
      return issue.origin === 'string' ? `must be at least ${n} characters long` : `must have at least ${n} items`;
    }
    case 'too_big': {
      const n = Number(issue.maximum);
      if (issue.origin === 'number' || issue.origin === 'bigint') return issue.inclusive === false ? `must be less than ${n}` : `must be at most ${n}`;
      return issue.origin === 'string' ? `must be at most ${n} characters long` : `must have at most ${n} items`;
    }
    case 'invalid_value':
      return issue.values.length === 1 ? `must be ${String(issue.values[0])}` : `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'is not in the expected form' : `must be ${FORMATS[issue.format] ?? `a valid ${issue.format}`}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    case 'invalid_union':
      return 'is not any of the accepted forms';
    case 'invalid_key':
      return 'has a key that is not allowed';
    case 'invalid_element':
      return 'has an element that is not allowed';
    default:
      return undefined;
  }
};

const KINDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping of fields',
  date: 'a date',
  null: 'empty (null)',
};

const FORMATS: Record<string, string> = {
  url: 'a URL',
  email: 'an email address',
  uuid: 'a UUID',
  datetime: 'a date and time (2027-01-01T00:00:00Z)',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
};
