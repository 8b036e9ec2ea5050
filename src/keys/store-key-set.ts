import { createPrivateKey, type KeyObject } from 'node:crypto';
import { systemClock, type Clock } from '../shared/clock.js';
import { ConfigError } from '../shared/config-error.js';
import type { SigningKeyRecord, SigningKeyRecords } from '../shared/signing-key-records.js';
import type { KeySetEvent, KeyUse } from './disk-key-set.js';
import { sealPrivateKey, unseal, type Kek, type KeyTimes } from './key-encryption.js';
import { keyKindOf, newPrivateKey, publicJwkOf, signingCryptoKey, type StoredKeyAlgorithm } from './key-material.js';
import { pollKeys, signingKeyAt, type KeySet, type PublicJwk, type SigningKey } from './key-set.js';

/** What a StoreKeySet reports while it watches the store. */
export type StoreKeySetEvent =
  | KeySetEvent
  /** The store did not answer the check; the keys in use stay. Reported once per outage. */
  | { type: 'unreachable'; reason: string }
  /** The store answers again after an outage. */
  | { type: 'reachable' };

export interface StoreKeySetOptions {
  /**
   * The key-encryption keys that open the stored keys: keys.encryption_key_file first (it seals
   * new keys), then keys.previous_encryption_key_file while the key-encryption key changes.
   */
  keks: readonly [Kek, ...Kek[]];
  /** Make a first key when the store holds none (only one of several instances starting at once does). */
  generateIfEmpty: boolean;
  /** keys.publish_before_use in ms: how long a key made by `keys rotate` is published before it signs. */
  publishBeforeUseMs?: number;
  /** What kind of key to make for an empty store (RS256 by default). */
  algorithm?: StoredKeyAlgorithm;
  clock?: Clock;
  /** The store as an operator knows it (a file, a URL without credentials), for messages. */
  storeName?: string;
}

/** A key of the store as the set holds it: opened, ready to sign. */
export interface StoredKey {
  readonly kid: string;
  readonly alg: StoredKeyAlgorithm;
  readonly createdAt: number;
  readonly signsFrom: number;
  readonly bits: number;
  /** Which key-encryption key seals it in the store. */
  readonly kekId: string;
  readonly privateKey: KeyObject;
  readonly signing: SigningKey;
  readonly publicJwk: PublicJwk;
}

/** A key as list() reports it. */
export interface ListedStoredKey {
  kid: string;
  alg: StoredKeyAlgorithm;
  createdAt: number;
  signsFrom: number;
  bits: number;
  kekId: string;
  use: KeyUse;
}

/** How often a running instance asks the store whether its keys changed. */
export const STORE_KEYS_INTERVAL_MS = 1500;

/**
 * The signing keys of a fleet, kept in the token store (keys.source store) and shared by every
 * instance that uses it. Every key is published; the newest key whose signs-from time has come
 * signs, and until one has, the oldest goes on signing: the rules of keys.dir, with the times
 * kept in each record rather than read from a file.
 *
 * The private keys are sealed in the store under the key-encryption key; this set opens each
 * once, when it first meets it, and keeps it in memory. A running instance asks the store for
 * its generation every STORE_KEYS_INTERVAL_MS, so a `keys rotate` run on any machine reaches
 * every instance within seconds; while the store does not answer, the keys in use stay.
 */
export class StoreKeySet implements KeySet {
  #keys: readonly StoredKey[];
  #jwks: { keys: readonly PublicJwk[] };
  #generation: number;
  /** The generation whose records were refused, so that a refusal is reported once. */
  #refused: number | undefined;
  #unreachable = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #delay: number;
  readonly #clock: Clock;

  private constructor(
    readonly store: SigningKeyRecords,
    readonly options: StoreKeySetOptions,
    generation: number,
    keys: readonly StoredKey[],
  ) {
    this.#generation = generation;
    this.#keys = keys;
    this.#jwks = publish(keys);
    this.#delay = options.publishBeforeUseMs ?? 0;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Reads and opens every key in the store, making the first one if the store holds none and
   * generateIfEmpty says so. Throws ConfigError when a key-encryption key does not open a stored
   * key, or the store holds none; a store error (unreachable) as it comes.
   */
  static async open(store: SigningKeyRecords, options: StoreKeySetOptions): Promise<StoreKeySet> {
    let list = await store.listSigningKeys();
    if (list.keys.length === 0 && options.generateIfEmpty) {
      // Every instance starting against an empty store makes a key; the store keeps one of them.
      const now = (options.clock ?? systemClock).now();
      const record = await sealPrivateKey(options.keks[0], await newPrivateKey(options.algorithm ?? 'RS256'), { createdAt: now, signsFrom: now });
      await store.addSigningKey(record, { onlyIfNone: true });
      list = await store.listSigningKeys();
    }
    if (list.keys.length === 0) throw noKeys(options);
    const keys = await openRecords(list.keys, options.keks, new Map());
    return new StoreKeySet(store, options, list.generation, keys);
  }

  signingKey(): SigningKey {
    // #keys is newest first.
    return signingKeyAt(this.#keys, this.#clock.now());
  }

  jwks(): { keys: readonly PublicJwk[] } {
    return this.#jwks;
  }

  /** Keys left out: none here (a record that does not open refuses the whole change). */
  skipped(): readonly string[] {
    return [];
  }

  /** Every stored key keeps its times in its record: none comes from a file's mtime. */
  untimed(): readonly string[] {
    return [];
  }

  /** The generation of the records in use. */
  get generation(): number {
    return this.#generation;
  }

  /** The keys, newest first, with what each is doing now. */
  list(): readonly ListedStoredKey[] {
    const signing = this.signingKey().kid;
    const now = this.#clock.now();
    return this.#keys.map(({ kid, alg, createdAt, signsFrom, bits, kekId }) => ({
      kid,
      alg,
      createdAt,
      signsFrom,
      bits,
      kekId,
      use: kid === signing ? 'signing' : signsFrom > now ? 'pending' : 'published',
    }));
  }

  /** The opened keys, newest first: for re-sealing and exporting. */
  keys(): readonly StoredKey[] {
    return this.#keys;
  }

  /**
   * Asks the store for its generation and, when it moved on, reads the keys again. A change that
   * does not open (a key sealed under a key-encryption key this instance lacks, no key left) is
   * refused and the keys in use stay; a store that does not answer keeps them too. Never throws.
   */
  async refresh(onEvent: (event: StoreKeySetEvent) => void = () => {}): Promise<void> {
    let generation: number;
    try {
      generation = await this.store.signingKeyGeneration();
    } catch (err) {
      if (!this.#unreachable) onEvent({ type: 'unreachable', reason: (err as Error).message });
      this.#unreachable = true;
      return;
    }
    if (this.#unreachable) onEvent({ type: 'reachable' });
    this.#unreachable = false;
    if (generation === this.#generation || generation === this.#refused) return;
    try {
      const list = await this.store.listSigningKeys();
      if (list.keys.length === 0) throw noKeys(this.options);
      const known = new Map(this.#keys.map((k) => [k.kid, k]));
      const keys = await openRecords(list.keys, this.options.keks, known);
      this.#keys = keys;
      this.#jwks = publish(keys);
      this.#generation = list.generation;
      this.#refused = undefined;
      onEvent({ type: 'reloaded', kids: keys.map((k) => k.kid), skipped: [], untimed: [] });
    } catch (err) {
      if (err instanceof ConfigError) {
        this.#refused = generation;
        onEvent({ type: 'rejected', problem: err });
      } else {
        if (!this.#unreachable) onEvent({ type: 'unreachable', reason: (err as Error).message });
        this.#unreachable = true;
      }
    }
  }

  /**
   * Checks the store every `intervalMs` and reports each reload, refused change, outage, and
   * change of the signing key (a pending key's time has come).
   */
  watch(onEvent: (event: StoreKeySetEvent) => void, intervalMs = STORE_KEYS_INTERVAL_MS): void {
    if (this.#timer !== undefined) return;
    this.#timer = pollKeys(this, () => this.refresh(onEvent), onEvent, intervalMs);
  }

  /**
   * Makes a new key of keys.algorithm (or `alg`) in the store, sealed under the first
   * key-encryption key; published at once, it signs once publishBeforeUseMs has passed.
   */
  async rotate(alg: StoredKeyAlgorithm = this.options.algorithm ?? 'RS256'): Promise<{ kid: string; signsFrom: number }> {
    const now = this.#clock.now();
    const { kid, added } = await this.importKey(await newPrivateKey(alg), { createdAt: now, signsFrom: now + this.#delay });
    if (!added) throw new Error(`a new key collided with kid ${kid}`);
    return { kid, signsFrom: now + this.#delay };
  }

  /**
   * Adds a private key made elsewhere (`keys import`, a move from keys.dir) with its times,
   * by default made now and signing once publishBeforeUseMs has passed. Resolves added: false
   * when the store holds that key already. Throws TypeError for a key tollgate does not sign with.
   */
  async importKey(privateKey: KeyObject, times: Partial<KeyTimes> = {}): Promise<{ kid: string; added: boolean }> {
    const createdAt = times.createdAt ?? this.#clock.now();
    const record = await sealPrivateKey(this.options.keks[0], privateKey, { createdAt, signsFrom: times.signsFrom ?? createdAt + this.#delay });
    const added = await this.store.addSigningKey(record);
    await this.refresh();
    return { kid: record.kid, added };
  }

  /** Removes a key from the store; false when it was not there. */
  async remove(kid: string): Promise<boolean> {
    const removed = await this.store.removeSigningKey(kid);
    await this.refresh();
    return removed;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function noKeys(options: StoreKeySetOptions): ConfigError {
  return ConfigError.single(options.storeName ?? 'the token store', 'holds no signing keys (keys.source store); a server makes the first one on its first start');
}

function publish(keys: readonly StoredKey[]): { keys: readonly PublicJwk[] } {
  return Object.freeze({ keys: Object.freeze(keys.map((k) => k.publicJwk)) });
}

/**
 * Opens every record (oldest first) and returns the keys newest first. A key already known by
 * its kid is kept as it is: re-sealed under another key-encryption key, it is still the same key.
 */
export async function openRecords(records: readonly SigningKeyRecord[], keks: readonly Kek[], known: ReadonlyMap<string, StoredKey>): Promise<StoredKey[]> {
  const keys: StoredKey[] = [];
  for (const record of records) {
    const had = known.get(record.kid);
    keys.push(had === undefined ? await openRecord(record, keks) : { ...had, createdAt: record.createdAt, signsFrom: record.signsFrom, kekId: record.kekId });
  }
  return keys.sort((a, b) => b.createdAt - a.createdAt || a.kid.localeCompare(b.kid));
}

/** Opens one record. Throws a ConfigError naming the key-encryption key file, never key material. */
export async function openRecord(record: SigningKeyRecord, keks: readonly Kek[]): Promise<StoredKey> {
  const kek = keks.find((k) => k.id === record.kekId);
  if (kek === undefined) {
    const ids = keks.map((k) => `${k.id} (${k.file})`).join(' and ');
    throw ConfigError.single(
      keks[0]!.file,
      `does not open the signing keys in the store: kid ${record.kid} is sealed under the key-encryption key with id ${record.kekId}, and this tollgate has ${ids}; give the key file it was sealed with (keys.encryption_key_file, or keys.previous_encryption_key_file while changing it)`,
    );
  }
  const der = unseal(kek, record.kid, record.alg, record.sealed);
  if (der === undefined) {
    throw ConfigError.single(kek.file, `does not open the stored key kid ${record.kid}, though its id matches: the record was changed or damaged in the store`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw ConfigError.single(kek.file, `opens the stored key kid ${record.kid}, but what it holds is not a private key`);
  }
  const kind = keyKindOf(privateKey);
  if (kind === undefined || kind.alg !== record.alg) {
    throw ConfigError.single(kek.file, `opens the stored key kid ${record.kid}, but it is not a key for ${record.alg}`);
  }
  const publicJwk = await publicJwkOf(privateKey, kind.alg);
  if (publicJwk.kid !== record.kid) {
    throw ConfigError.single(kek.file, `opens the stored key kid ${record.kid}, but it holds the key with kid ${publicJwk.kid}`);
  }
  const key = await signingCryptoKey(privateKey, kind.alg);
  return {
    kid: record.kid,
    alg: kind.alg,
    createdAt: record.createdAt,
    signsFrom: record.signsFrom,
    bits: kind.bits,
    kekId: record.kekId,
    privateKey,
    signing: Object.freeze({ kid: record.kid, alg: kind.alg, key, createdAt: record.createdAt }),
    publicJwk,
  };
}
