import type Database from 'better-sqlite3';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';

/** The tables of the signing key records, migration 5 of the SQLite store. */
export const SIGNING_KEYS_MIGRATION = `CREATE TABLE signing_keys (
     kid         TEXT PRIMARY KEY,     -- RFC 7638 thumbprint
     alg         TEXT NOT NULL,
     created_at  INTEGER NOT NULL,     -- ms
     signs_from  INTEGER NOT NULL,     -- ms
     public_jwk  TEXT NOT NULL,        -- JSON
     sealed      TEXT NOT NULL,        -- AES-256-GCM: nonce, ciphertext, tag (base64url)
     kek_id      TEXT NOT NULL         -- which key-encryption key sealed it
   ) WITHOUT ROWID;
   CREATE TABLE signing_key_generation (
     id         INTEGER PRIMARY KEY CHECK (id = 1),
     generation INTEGER NOT NULL        -- moves on with every change of signing_keys
   );
   INSERT INTO signing_key_generation (id, generation) VALUES (1, 0);`;

interface KeyRow {
  kid: string;
  alg: string;
  created_at: number;
  signs_from: number;
  public_jwk: string;
  sealed: string;
  kek_id: string;
}

/**
 * The SigningKeyRecords role in the SQLite file. Every write is one IMMEDIATE transaction that
 * also moves the generation on, so processes sharing the file never interleave a check and a write.
 */
export class SqliteSigningKeys {
  readonly #list: Database.Transaction<() => SigningKeyList>;
  readonly #generation: Database.Statement<[], { generation: number }>;
  readonly #add: Database.Transaction<(record: SigningKeyRecord, onlyIfNone: boolean) => boolean>;
  readonly #remove: Database.Transaction<(kid: string) => boolean>;
  readonly #reseal: Database.Transaction<(generation: number, reseals: readonly Reseal[]) => boolean>;

  constructor(db: Database.Database) {
    const generation = db.prepare<[], { generation: number }>('SELECT generation FROM signing_key_generation WHERE id = 1');
    this.#generation = generation;
    const bump = db.prepare('UPDATE signing_key_generation SET generation = generation + 1 WHERE id = 1');
    const rows = db.prepare<[], KeyRow>('SELECT * FROM signing_keys ORDER BY created_at, kid');
    this.#list = db.transaction(() => ({ generation: generation.get()!.generation, keys: rows.all().map(toRecord) }));
    const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM signing_keys');
    const insert = db.prepare(
      `INSERT INTO signing_keys (kid, alg, created_at, signs_from, public_jwk, sealed, kek_id)
       VALUES (@kid, @alg, @createdAt, @signsFrom, @publicJwk, @sealed, @kekId) ON CONFLICT (kid) DO NOTHING`,
    );
    this.#add = db.transaction((record: SigningKeyRecord, onlyIfNone: boolean) => {
      if (onlyIfNone && count.get()!.n > 0) return false;
      const { kid, alg, createdAt, signsFrom, publicJwk, sealed, kekId } = record;
      if (insert.run({ kid, alg, createdAt, signsFrom, publicJwk, sealed, kekId }).changes === 0) return false;
      bump.run();
      return true;
    });
    const remove = db.prepare<[string]>('DELETE FROM signing_keys WHERE kid = ?');
    this.#remove = db.transaction((kid: string) => {
      if (remove.run(kid).changes === 0) return false;
      bump.run();
      return true;
    });
    const update = db.prepare<[string, string, string]>('UPDATE signing_keys SET sealed = ?, kek_id = ? WHERE kid = ?');
    this.#reseal = db.transaction((expected: number, reseals: readonly Reseal[]) => {
      if (generation.get()!.generation !== expected) return false;
      for (const r of reseals) update.run(r.sealed, r.kekId, r.kid);
      bump.run();
      return true;
    });
  }

  list(): SigningKeyList {
    return this.#list.deferred();
  }

  generation(): number {
    return this.#generation.get()!.generation;
  }

  add(record: SigningKeyRecord, onlyIfNone: boolean): boolean {
    return this.#add.immediate(record, onlyIfNone);
  }

  remove(kid: string): boolean {
    return this.#remove.immediate(kid);
  }

  reseal(generation: number, reseals: readonly Reseal[]): boolean {
    return this.#reseal.immediate(generation, reseals);
  }
}

function toRecord(row: KeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    createdAt: row.created_at,
    signsFrom: row.signs_from,
    publicJwk: row.public_jwk,
    sealed: row.sealed,
    kekId: row.kek_id,
  };
}
