import { InvalidRequest } from './errors.js';

/** Parameters RFC 8707 and common practice allow more than once; every other one is single. */
const REPEATABLE = new Set(['resource', 'audience']);

/** The largest value any single parameter may have; a token or secret is far smaller. */
const MAX_VALUE_LENGTH = 8192;

/**
 * The parameters of a form-encoded request body, checked for the rules every endpoint shares:
 * a parameter sent twice is an error (RFC 6749 §3.1, §3.2), and one sent empty is treated as
 * omitted (RFC 6749 §3.1).
 */
export class Params {
  readonly #values: ReadonlyMap<string, readonly string[]>;

  private constructor(values: ReadonlyMap<string, readonly string[]>) {
    this.#values = values;
  }

  /** From the body as @fastify/formbody parsed it (a value, or a list when repeated). */
  static fromBody(body: unknown): Params {
    const values = new Map<string, string[]>();
    if (body !== null && typeof body === 'object') {
      for (const [name, raw] of Object.entries(body)) {
        const list = (Array.isArray(raw) ? raw : [raw]).map(String);
        if (list.length > 1 && !REPEATABLE.has(name)) {
          throw new InvalidRequest(`parameter ${safeName(name)} was given more than once`);
        }
        if (list.some((v) => v.length > MAX_VALUE_LENGTH)) {
          throw new InvalidRequest(`parameter ${safeName(name)} is too long`);
        }
        const present = list.filter((v) => v !== '');
        if (present.length > 0) values.set(name, present);
      }
    }
    return new Params(values);
  }

  /** A single-valued parameter, or undefined when absent or empty. */
  get(name: string): string | undefined {
    return this.#values.get(name)?.[0];
  }

  /** Every value of a repeatable parameter. */
  all(name: string): readonly string[] {
    return this.#values.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }
}

/** A parameter name fit to echo in an error description: short, printable, no secrets in it. */
function safeName(name: string): string {
  return /^[a-z_]{1,40}$/.test(name) ? name : '(unnamed)';
}
