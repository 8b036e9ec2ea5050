import type { Sql } from 'postgres';
import type { Reseal, SigningKeyList, SigningKeyRecord } from '../shared/signing-key-records.js';

interface KeyRow {
  kid: string;
  alg: string;
  created_at: string;
  signs_from: string;
  public_jwk: string;
  sealed: string;
  kek_id: string;
}

// Every change takes the generation row's lock first (UPDATE … RETURNING), so that changes from
// several instances run one after the other and "only if there are none" is decided under it.
const BUMP = 'UPDATE tollgate_signing_key_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation';

/** The SigningKeyRecords role in PostgreSQL, each operation one statement or one transaction. */
export const postgresSigningKeys = {
  async list(sql: Sql): Promise<SigningKeyList> {
    // One statement: the generation and the rows come from one snapshot.
    const rows = await sql.unsafe<(KeyRow & { generation: string })[]>(
      `SELECT g.generation, k.* FROM tollgate_signing_key_generation g
       LEFT JOIN tollgate_signing_keys k ON true WHERE g.id = 1 ORDER BY k.created_at, k.kid`,
    );
    const generation = Number(rows[0]?.generation ?? 0);
    return { generation, keys: rows.filter((r) => r.kid !== null).map(toRecord) };
  },

  async generation(sql: Sql): Promise<number> {
    const [row] = await sql.unsafe<{ generation: string }[]>('SELECT generation FROM tollgate_signing_key_generation WHERE id = 1');
    return Number(row?.generation ?? 0);
  },

  async add(sql: Sql, record: SigningKeyRecord, onlyIfNone: boolean): Promise<boolean> {
    return (await sql.begin(async (tx) => {
      await tx.unsafe('SELECT generation FROM tollgate_signing_key_generation WHERE id = 1 FOR UPDATE');
      if (onlyIfNone) {
        const [n] = await tx.unsafe<{ any: boolean }[]>('SELECT EXISTS (SELECT 1 FROM tollgate_signing_keys) AS any');
        if (n?.any === true) return false;
      }
      const inserted = await tx.unsafe(
        `INSERT INTO tollgate_signing_keys (kid, alg, created_at, signs_from, public_jwk, sealed, kek_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kid) DO NOTHING RETURNING kid`,
        [record.kid, record.alg, record.createdAt, record.signsFrom, record.publicJwk, record.sealed, record.kekId],
      );
      if (inserted.length === 0) return false;
      await tx.unsafe(BUMP);
      return true;
    })) as boolean;
  },

  async remove(sql: Sql, kid: string): Promise<boolean> {
    return (await sql.begin(async (tx) => {
      await tx.unsafe('SELECT generation FROM tollgate_signing_key_generation WHERE id = 1 FOR UPDATE');
      const removed = await tx.unsafe('DELETE FROM tollgate_signing_keys WHERE kid = $1 RETURNING kid', [kid]);
      if (removed.length === 0) return false;
      await tx.unsafe(BUMP);
      return true;
    })) as boolean;
  },

  async reseal(sql: Sql, generation: number, reseals: readonly Reseal[]): Promise<boolean> {
    return (await sql.begin(async (tx) => {
      const [row] = await tx.unsafe<{ generation: string }[]>('SELECT generation FROM tollgate_signing_key_generation WHERE id = 1 FOR UPDATE');
      if (Number(row?.generation) !== generation) return false;
      for (const r of reseals) await tx.unsafe('UPDATE tollgate_signing_keys SET sealed = $1, kek_id = $2 WHERE kid = $3', [r.sealed, r.kekId, r.kid]);
      await tx.unsafe(BUMP);
      return true;
    })) as boolean;
  },
};

function toRecord(row: KeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    createdAt: Number(row.created_at),
    signsFrom: Number(row.signs_from),
    publicJwk: row.public_jwk,
    sealed: row.sealed,
    kekId: row.kek_id,
  };
}
