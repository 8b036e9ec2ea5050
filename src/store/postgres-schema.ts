import type { Sql } from 'postgres';

/**
 * Schema migrations of the PostgreSQL store, applied in order on start; the table
 * tollgate_schema holds how many ran. Append only: a released migration is never edited. A
 * role added to the store later (signing keys, say) appends its tables here.
 *
 * Times are bigint: seconds for iat/exp as in the token, ms elsewhere. Tables are unlogged
 * nowhere: a replay claim or a counter lost in a failover would let an assertion be replayed
 * or a brute force go on.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE tollgate_tokens (
     jti        text PRIMARY KEY,
     client_id  text NOT NULL,
     scope      text NOT NULL,
     aud        text NOT NULL,            -- JSON array
     iat        bigint NOT NULL,          -- seconds
     exp        bigint NOT NULL,          -- seconds
     digest     text NOT NULL,            -- SHA-256 of the compact JWT, base64url
     cnf        text,                     -- x5t#S256 of a bound certificate (RFC 8705)
     revoked_at bigint                    -- ms, NULL while active
   );
   CREATE INDEX tollgate_tokens_exp ON tollgate_tokens (exp);
   CREATE TABLE tollgate_client_revocations (
     client_id      text PRIMARY KEY,
     revoked_before bigint NOT NULL       -- ms: tokens with iat at or before it are revoked
   );
   CREATE TABLE tollgate_claims (
     key        text PRIMARY KEY,         -- e.g. a client assertion's client and jti
     expires_at bigint NOT NULL           -- ms
   );
   CREATE TABLE tollgate_counters (
     key      text PRIMARY KEY,           -- e.g. a client and source address
     count    bigint NOT NULL,
     reset_at bigint NOT NULL             -- ms: the end of its window
   );
   -- Checks every limit and adds one to every counter, or to none, in one round trip. Callers
   -- on every instance serialise on a transaction-scoped advisory lock per key, taken in key
   -- order so that two callers never wait on each other in a cycle.
   CREATE FUNCTION tollgate_reserve_hits(p_keys text[], p_limits bigint[], p_window bigint, p_now bigint)
   RETURNS TABLE (granted boolean, idx integer, count bigint, reset_at bigint)
   LANGUAGE plpgsql AS $fn$
   DECLARE
     k text;
     c bigint;
     r bigint;
     n integer := coalesce(array_length(p_keys, 1), 0);
   BEGIN
     FOR k IN SELECT DISTINCT u FROM unnest(p_keys) AS u ORDER BY u LOOP
       PERFORM pg_advisory_xact_lock(hashtextextended('tollgate counter ' || k, 0));
     END LOOP;
     FOR i IN 1 .. n LOOP
       SELECT t.count, t.reset_at INTO c, r FROM tollgate_counters t WHERE t.key = p_keys[i];
       IF NOT FOUND OR r <= p_now THEN c := 0; r := 0; END IF;
       IF c >= p_limits[i] THEN
         RETURN QUERY SELECT false, i - 1, c, r;
         RETURN;
       END IF;
     END LOOP;
     FOR i IN 1 .. n LOOP
       INSERT INTO tollgate_counters AS t (key, count, reset_at) VALUES (p_keys[i], 1, p_now + p_window)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN t.reset_at > p_now THEN t.count + 1 ELSE 1 END,
         reset_at = CASE WHEN t.reset_at > p_now THEN t.reset_at ELSE p_now + p_window END
       RETURNING t.count, t.reset_at INTO c, r;
       RETURN QUERY SELECT true, i - 1, c, r;
     END LOOP;
   END
   $fn$;`,
  // 2: the RFC 7638 thumbprint of the DPoP key a token is bound to (RFC 9449).
  'ALTER TABLE tollgate_tokens ADD COLUMN jkt text',
  // 3: the signing keys of a fleet (keys.source store), the private halves sealed, and a
  // generation that moves on with every change so that instances notice one cheaply.
  `CREATE TABLE tollgate_signing_keys (
     kid        text PRIMARY KEY,         -- RFC 7638 thumbprint
     alg        text NOT NULL,
     created_at bigint NOT NULL,          -- ms
     signs_from bigint NOT NULL,          -- ms
     public_jwk text NOT NULL,            -- JSON
     sealed     text NOT NULL,            -- AES-256-GCM: nonce, ciphertext, tag (base64url)
     kek_id     text NOT NULL             -- which key-encryption key sealed it
   );
   CREATE TABLE tollgate_signing_key_generation (
     id         integer PRIMARY KEY CHECK (id = 1),
     generation bigint NOT NULL
   );
   INSERT INTO tollgate_signing_key_generation (id, generation) VALUES (1, 0);`,
];

/** The schema version this tollgate writes and reads. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/** The schema is one this tollgate cannot use: newer, or (for the CLI) not there. Never retried. */
export class PostgresSchemaError extends Error {
  override readonly name = 'PostgresSchemaError';
}

/**
 * Brings the tables up to POSTGRES_SCHEMA_VERSION in one transaction, holding an advisory lock
 * so that instances starting at once against an empty database migrate one after the other:
 * the first creates, the others wait and then find the version current. `schema`, when given,
 * is created if missing and holds the tables (the connection's search_path names it).
 * Refuses a newer schema rather than misread it. Resolves the version found before.
 */
export async function migrate(sql: Sql, schema: string | undefined): Promise<number> {
  return sql.begin(async (tx) => {
    // The two-key form: its lock space is apart from the one-key locks of other applications.
    // A migration may outlast the statement bound of requests (an index on a large table).
    await tx.unsafe('SET LOCAL statement_timeout = 0');
    await tx.unsafe("SET LOCAL lock_timeout = '8s'");
    await tx.unsafe('SELECT pg_advisory_xact_lock(1953459308, hashtext($1))', [`tollgate schema ${schema ?? ''}`]);
    if (schema !== undefined) await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    const found = await readVersion(tx);
    if (found > MIGRATIONS.length) {
      throw new PostgresSchemaError(`the token store has schema version ${found}, newer than this tollgate knows (${MIGRATIONS.length}); upgrade tollgate`);
    }
    if (found === 0) await tx.unsafe('CREATE TABLE tollgate_schema (version integer NOT NULL)');
    for (let v = found; v < MIGRATIONS.length; v++) await tx.unsafe(MIGRATIONS[v]!);
    if (found === 0) await tx.unsafe('INSERT INTO tollgate_schema (version) VALUES ($1)', [MIGRATIONS.length]);
    else if (found < MIGRATIONS.length) await tx.unsafe('UPDATE tollgate_schema SET version = $1', [MIGRATIONS.length]);
    return found;
  }) as Promise<number>;
}

/** The schema version in the database: 0 when no tollgate has made its tables there. */
export async function readVersion(sql: Pick<Sql, 'unsafe'>): Promise<number> {
  const [exists] = await sql.unsafe<{ t: string | null }[]>("SELECT to_regclass('tollgate_schema')::text AS t");
  if (exists?.t == null) return 0;
  const [row] = await sql.unsafe<{ version: number }[]>('SELECT max(version) AS version FROM tollgate_schema');
  return row?.version ?? 0;
}

/** A PostgreSQL identifier, quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
