import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import type { Client } from '../clients/registry.js';
import { ARGON2_OPTIONS } from './secrets.js';

/** The argon2 parameters that set what one verification costs. */
export interface Argon2Parameters {
  /** KiB of memory (m). */
  memoryCost: number;
  /** Passes over it (t). */
  timeCost: number;
  /** Lanes (p). */
  parallelism: number;
}

/** The parameters of an argon2 PHC string, in whatever order it gives them, or undefined when it is not one. */
export function argon2Parameters(hash: string): Argon2Parameters | undefined {
  const m = /^\$argon2(?:id|i|d)\$(?:v=\d+\$)?([a-z]=\d+(?:,[a-z]=\d+)*)\$/.exec(hash);
  if (m === null) return undefined;
  const params = new Map(m[1]!.split(',').map((kv) => [kv[0]!, Number(kv.slice(2))]));
  const [memoryCost, timeCost, parallelism] = [params.get('m'), params.get('t'), params.get('p')];
  if (memoryCost === undefined || timeCost === undefined || parallelism === undefined) return undefined;
  return { memoryCost, timeCost, parallelism };
}

/**
 * Whether `a` costs more to verify than `b`: argon2 fills m KiB t times, so the work is m × t;
 * with equal work, fewer lanes leave less to run in parallel.
 */
function costlier(a: Argon2Parameters, b: Argon2Parameters): boolean {
  const work = a.memoryCost * a.timeCost - b.memoryCost * b.timeCost;
  return work !== 0 ? work > 0 : a.parallelism < b.parallelism;
}

const DEFAULT_PARAMETERS: Argon2Parameters = {
  memoryCost: ARGON2_OPTIONS.memoryCost,
  timeCost: ARGON2_OPTIONS.timeCost,
  parallelism: ARGON2_OPTIONS.parallelism,
};

/**
 * A hash of a random value no one knows. A secret presented for an unknown client (or one with
 * no live secret) is verified against it, so that this path costs what a wrong secret for a
 * registered client costs and response time does not reveal which client_ids exist.
 *
 * Stored hashes carry their own parameters, and a registry may hold hashes costlier than the
 * ones tollgate makes (m=65536,t=3,p=4 took 153 ms where the default took 33 ms): the dummy is
 * made with the parameters of the costliest hash of the registry, and made again when the
 * registry changes, so that no registered client_id takes longer to refuse than an unknown one.
 */
export class DummyHash {
  #parameters = DEFAULT_PARAMETERS;
  #hash: Promise<string> | undefined;
  #fellBack = false;

  /**
   * Whether argon2 refused the registry's costliest parameters and the dummy was made with
   * tollgate's own: unknown client_ids then answer faster than that client's wrong secrets.
   */
  get fellBack(): boolean {
    return this.#fellBack;
  }

  /** The parameters the dummy is made with now. */
  get parameters(): Argon2Parameters {
    return { ...this.#parameters };
  }

  /** The dummy hash, made on first use. */
  get(): Promise<string> {
    // Parameters argon2 refuses (a registered hash below its minimum, which can never verify
    // either) fall back to tollgate's own: the dummy must always exist.
    this.#hash ??= makeHash(this.#parameters).then(
      (hash) => {
        this.#fellBack = false;
        return hash;
      },
      () => {
        this.#fellBack = this.#parameters !== DEFAULT_PARAMETERS;
        return makeHash(DEFAULT_PARAMETERS);
      },
    );
    // A dummy that could not be made at all is made again on next use, not kept as a failure.
    const hash = this.#hash;
    hash.catch(() => {
      if (this.#hash === hash) this.#hash = undefined;
    });
    return hash;
  }

  /**
   * Takes the parameters of the costliest hash of `clients` (tollgate's own when they have
   * none) and makes the dummy again if they changed. Resolves once the dummy is ready.
   */
  follow(clients: readonly Client[]): Promise<string> {
    let costliest: Argon2Parameters | undefined;
    for (const client of clients) {
      for (const secret of client.secrets) {
        const p = argon2Parameters(secret.hash);
        if (p !== undefined && (costliest === undefined || costlier(p, costliest))) costliest = p;
      }
    }
    const next = costliest ?? DEFAULT_PARAMETERS;
    const current = this.#parameters;
    if (next.memoryCost !== current.memoryCost || next.timeCost !== current.timeCost || next.parallelism !== current.parallelism) {
      this.#parameters = next;
      this.#hash = undefined;
    }
    return this.get();
  }
}

function makeHash(parameters: Argon2Parameters): Promise<string> {
  return argon2.hash(randomBytes(32).toString('base64url'), { type: argon2.argon2id, ...parameters });
}
