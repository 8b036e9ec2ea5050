import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, type Problem } from '../shared/config-error.js';
import { parseCidr } from '../shared/address-list.js';
import { audienceSchema, durationSchema, ttlSchema } from '../shared/field-schemas.js';
import { parsePostgresUrl } from '../shared/postgres-url.js';
import { parseRedisNode, parseRedisUrl, REDIS_NODE_FORM, REDIS_URL_FORM } from '../shared/redis-url.js';
import { formatPath, plainMessages, readYamlFile, zodProblems, type DocPath } from '../shared/yaml-file.js';

function isIssuer(s: string): boolean {
  // RFC 8414 §2: an https URL (http allowed here for loopback and trials) with no query or
  // fragment. The issuer is compared as an exact string by resource servers (RFC 9068 §4), so
  // a trailing slash would be a second, different issuer.
  try {
    const url = new URL(s);
    return (
      (url.protocol === 'https:' || url.protocol === 'http:') &&
      url.search === '' &&
      url.hash === '' &&
      !s.includes('?') &&
      !s.includes('#') &&
      url.username === '' &&
      url.password === '' &&
      !s.endsWith('/')
    );
  } catch {
    return false;
  }
}

/** store.url as the kind reads it: a Redis URL, or a libpq URL for postgres. */
function checkStoreUrl(kind: string, value: string, ctx: z.RefinementCtx): void {
  try {
    if (kind === 'postgres') parsePostgresUrl(value);
    else parseRedisUrl(value);
  } catch (err) {
    // The reason never repeats the URL: it may hold a password.
    ctx.addIssue({ code: 'custom', path: ['url'], message: (err as Error).message });
  }
}

/** host:port entries of a Sentinel or Cluster list: at least one, no repeats. */
const redisNodesSchema = z
  .array(
    z.string({ error: `must be ${REDIS_NODE_FORM}` }).superRefine((value, ctx) => {
      try {
        parseRedisNode(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
    { error: `must be a list of ${REDIS_NODE_FORM}` },
  )
  .min(1, { error: 'must list at least one server' })
  .refine((nodes) => new Set(nodes).size === nodes.length, { error: 'lists a server twice' });

/** The Redis settings that only a store.kind redis reads, with how to name each in an error. */
const REDIS_ONLY = ['sentinel', 'cluster', 'username', 'password', 'tls', 'min_replicas'] as const;

function checkRedisStore(store: Record<string, unknown> & { kind: string; url?: string | undefined; prefix: string }, ctx: z.RefinementCtx): void {
  if (store.kind !== 'redis') {
    for (const field of REDIS_ONLY) {
      if (store[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'applies only to store.kind redis' });
    }
    return;
  }
  const modes = (['url', 'sentinel', 'cluster'] as const).filter((m) => store[m] !== undefined);
  if (modes.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: modes.length === 0 ? ['url'] : [modes[1]!],
      message:
        modes.length === 0
          ? 'is required when store.kind is redis, or one of store.sentinel, store.cluster (e.g. url: redis://127.0.0.1:6379/0)'
          : `give exactly one of store.url, store.sentinel, store.cluster (found ${modes.map((m) => `store.${m}`).join(' and ')})`,
    });
    return;
  }
  if (store.url !== undefined) {
    // The URL carries its own credentials and its own TLS (rediss://): one place for each.
    for (const field of ['username', 'password'] as const) {
      if (store[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: `does not apply with store.url, which carries its own (redis://user:password@host; TOLLGATE_STORE__URL keeps it out of the file)` });
    }
    if (store.tls !== undefined) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'does not apply with store.url: write rediss:// for TLS' });
  }
  if (store.username !== undefined && store.password === undefined) {
    ctx.addIssue({ code: 'custom', path: ['username'], message: 'needs store.password too (TOLLGATE_STORE__PASSWORD keeps it out of the file)' });
  }
  if (store.cluster !== undefined && /[{}]/.test(store.prefix)) {
    ctx.addIssue({ code: 'custom', path: ['prefix'], message: 'must not contain { or } with store.cluster: tollgate puts its own hash tags in every key' });
  }
}

/** The schema of tollgate.yaml; docs/reference/configuration.md is generated from it (npm run docs). */
export const configSchema = z.strictObject({
  issuer: z
    .string({ error: 'is required: the URL resource servers see as iss (e.g. https://auth.example.com)' })
    .refine(isIssuer, { error: 'must be an http(s) URL with no query, fragment, credentials or trailing slash' })
    .describe('The `iss` claim and the base of every metadata URL: an http(s) URL with no query, fragment, credentials or trailing slash. Resource servers compare it as an exact string. Behind a proxy, the public https URL.'),
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1').describe('The address to listen on; `0.0.0.0` for every interface (then put TLS in front).'),
      port: z.number({ error: 'must be a port number' }).int().min(0).max(65_535).default(8080).describe('The port; 0 picks a free one.'),
      // HTTPS served directly. client_ca asks clients for a certificate (optional, so other
      // methods keep working on the same port) and enables the RFC 8705 methods.
      tls: z
        .strictObject({
          cert: z.string().min(1).optional().describe('PEM certificate (chain) to serve HTTPS directly; needs `key`. Re-read on SIGHUP.'),
          key: z.string().min(1).optional().describe('PEM private key of `cert`. Re-read on SIGHUP.'),
          client_ca: z.string().min(1).optional().describe('PEM file of the CAs client certificates must chain to. Asks every client for a certificate without requiring one, and enables `tls_client_auth` and `self_signed_tls_client_auth`.'),
        })
        .optional()
        .describe('HTTPS served by tollgate itself, and mutual TLS (RFC 8705).'),
      // Behind a TLS-terminating proxy: the request header carrying the client certificate
      // (URL-encoded PEM, as nginx's $ssl_client_escaped_cert), believed only from trust_proxy.
      client_cert_header: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/, { error: 'must be an HTTP header name' })
        .transform((h) => h.toLowerCase())
        .optional()
        .describe('Behind a TLS-terminating proxy: the request header that carries the client certificate (URL-encoded PEM, like nginx\'s `$ssl_client_escaped_cert`). Believed only from `trust_proxy` addresses, and checked against `listen.tls.client_ca`, which it needs.'),
    })
    .superRefine((l, ctx) => {
      if (l.tls !== undefined && (l.tls.cert === undefined) !== (l.tls.key === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['tls'], message: 'needs both cert and key' });
      }
      if (l.tls?.client_ca !== undefined && l.tls.cert === undefined && l.client_cert_header === undefined) {
        ctx.addIssue({ code: 'custom', path: ['tls', 'client_ca'], message: 'needs tls.cert and tls.key, or client_cert_header behind a proxy' });
      }
      if (l.client_cert_header !== undefined && l.tls?.client_ca === undefined) {
        ctx.addIssue({ code: 'custom', path: ['client_cert_header'], message: 'needs tls.client_ca to check the forwarded certificates against' });
      }
    })
    .prefault({})
    .describe('Where the server listens.'),
  // Proxies whose X-Forwarded-For (and client_cert_header) is believed; empty: none.
  trust_proxy: z
    .array(z.string().refine((s) => parseCidr(s) !== undefined, { error: 'must be an IP address or CIDR block' }))
    .default([])
    .describe('Addresses or CIDR blocks of proxies in front of tollgate. From them, the client address is taken from `X-Forwarded-For` (for `allowed_ips`, throttling and logs) and `listen.client_cert_header` is believed. Empty: neither is.'),
  client_auth: z
    .strictObject({
      // RFC 7523 lets an assertion's aud be the token endpoint URL; tollgate wants the issuer
      // only unless told otherwise, since several audiences for one assertion is what made
      // audience confusion (CVE-2025-27370) possible.
      accept_token_endpoint_audience: z
        .boolean()
        .default(false)
        .describe('Also accept the token endpoint URL as the `aud` of a `private_key_jwt` assertion. By default only the issuer is.'),
    })
    .prefault({})
    .describe('How clients may authenticate.'),
  clients_file: z.string().min(1).default('./clients.yaml').describe('The client registry file.'),
  // A reload that would leave no client is refused unless this is true: an emptied or truncated
  // file (`: > clients.yaml`, a failed template) must not lock every client out at once.
  allow_empty_registry: z
    .boolean()
    .default(false)
    .describe('Lets a running server take a registry change that leaves no client. By default such a change is refused, so that an emptied file cannot lock every client out.'),
  tokens: z
    .strictObject({
      ttl: ttlSchema.default(900).describe('The default token lifetime.'),
      audience: z.array(audienceSchema).default([]).describe('The audiences of clients that have none of their own. Write `[https://a, https://b]` in the environment.'),
    })
    .prefault({})
    .describe('The access tokens.'),
  keys: z
    .strictObject({
      dir: z.string().min(1).default('../data/keys').describe('The folder of PKCS#8 PEM signing keys. A key is generated into it on first start.'),
      // RS256 is what every resource server accepts; ES256 and EdDSA sign several times faster.
      algorithm: z
        .enum(['RS256', 'ES256', 'EdDSA'], { error: 'must be RS256, ES256 or EdDSA' })
        .default('RS256')
        .describe('The kind of key `serve` (first start) and `keys rotate` make: RS256 (RSA-2048, what every resource server accepts), ES256 (EC P-256) or EdDSA (Ed25519), which sign several times faster. Each key signs with the algorithm of its own kind, so a folder may hold keys of several kinds while you move from one to another by rotation.'),
      // In seconds once parsed. A new key is published this long before it signs, so resource
      // servers that cache the JWKS (metadata.max_age, or their own cache) fetch it before they
      // meet a token it signed.
      publish_before_use: durationSchema(0, 7 * 86_400)
        .default(600)
        .describe('How long a new key is published in the JWKS before it signs. Keep it above `metadata.max_age` and your resource servers\' JWKS cache.'),
      source: z
        .enum(['dir', 'store'], { error: 'must be dir or store' })
        .default('dir')
        .describe('Where the signing keys live: dir (PEM files in keys.dir, one machine) or store (sealed records in the token store, shared by every instance of a fleet).'),
      encryption_key_file: z
        .string({ error: 'must be a file name' })
        .min(1)
        .optional()
        .describe('With keys.source store: the file holding the key-encryption key (32 random bytes, base64, e.g. from `openssl rand -base64 32`) that seals the private keys in the store.'),
      previous_encryption_key_file: z
        .string({ error: 'must be a file name' })
        .min(1)
        .optional()
        .describe('With keys.source store, while the key-encryption key changes: the old key file, still accepted for keys not yet sealed under the new one.'),
    })
    .superRefine((keys, ctx) => {
      if (keys.source === 'store') {
        if (keys.encryption_key_file === undefined) {
          ctx.addIssue({ code: 'custom', path: ['encryption_key_file'], message: 'is required when keys.source is store: a file holding 32 random bytes in base64 (openssl rand -base64 32)' });
        }
        return;
      }
      for (const field of ['encryption_key_file', 'previous_encryption_key_file'] as const) {
        if (keys[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'applies only to keys.source store' });
      }
    })
    .prefault({})
    .describe('The signing keys.'),
  store: z
    .strictObject({
      kind: z
        .enum(['sqlite', 'memory', 'redis', 'postgres'], { error: 'must be sqlite, memory, redis or postgres' })
        .default('sqlite')
        .describe('Where issued-token state lives: `sqlite` (a file on this machine), `redis` or `postgres` (shared by every instance), `memory` (this process only; tests and trials).'),
      path: z.string().min(1).default('../data/tollgate.db').describe('`sqlite`: the SQLite file, created (with its folder, mode 0700) on first start.'),
      url: z
        .string({ error: `must be a URL of the form ${REDIS_URL_FORM}, or a postgres:// URL` })
        .optional()
        .describe('`redis`: one server, `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS, with no query options (exactly one of `url`, `sentinel`, `cluster`). `postgres`: a libpq URL (docs/guides/postgresql.md).'),
      prefix: z
        .string({ error: 'must be a string' })
        .regex(/^\S+$/, { error: 'must be non-empty and contain no whitespace' })
        .default('tollgate:')
        .describe('`redis`: put before every key, so several deployments can share one Redis server. Non-empty, no whitespace.'),
      // Redis Sentinel: the master's name and the sentinels to ask where it is.
      sentinel: z
        .strictObject({
          master: z
            .string({ error: 'is required: the name the sentinels monitor the primary under' })
            .regex(/^\S+$/, { error: 'must be non-empty and contain no whitespace' })
            .describe('The name the sentinels monitor the primary under.'),
          nodes: redisNodesSchema.describe('The sentinels, as `host:port`.'),
          // The sentinels' own credentials, when they require one (requirepass in sentinel.conf).
          username: z.string({ error: 'must be a string' }).min(1).optional().describe('The sentinels\' own user, when they require one.'),
          password: z.string({ error: 'must be a string' }).min(1).optional().describe('The sentinels\' own password (`requirepass` in sentinel.conf).'),
        })
        .superRefine((sentinel, ctx) => {
          if (sentinel.username !== undefined && sentinel.password === undefined) {
            ctx.addIssue({ code: 'custom', path: ['username'], message: 'needs store.sentinel.password too (TOLLGATE_STORE__SENTINEL__PASSWORD keeps it out of the file)' });
          }
        })
        .optional()
        .describe('`redis`: Redis Sentinel, instead of `url`.'),
      // Redis Cluster: some of its nodes; the rest are found from them.
      cluster: z
        .strictObject({ nodes: redisNodesSchema.describe('Some nodes of the cluster, as `host:port`; the rest are found from them.') })
        .optional()
        .describe('`redis`: Redis Cluster, instead of `url`.'),
      // With sentinel or cluster (store.url carries its own): the data servers' ACL user and password.
      username: z.string({ error: 'must be a string' }).min(1).optional().describe('`redis` with `sentinel` or `cluster`: the data servers\' ACL user.'),
      password: z.string({ error: 'must be a string' }).min(1).optional().describe('`redis` with `sentinel` or `cluster`: the data servers\' password.'),
      // With sentinel or cluster: TLS to every server, as rediss:// is for store.url.
      tls: z.boolean({ error: 'must be true or false' }).optional().describe('`redis` with `sentinel` or `cluster`: TLS to every server, as `rediss://` is for `url`.'),
      // WAIT: a revocation is answered 200 only once this many replicas have acknowledged it.
      min_replicas: z
        .number({ error: 'must be a number of replicas' })
        .int()
        .min(0)
        .max(16)
        .optional()
        .describe('`redis`: a revocation is answered 200 only once this many replicas acknowledged it (`WAIT`), else 503. Unset: 0.'),
    })
    .superRefine((store, ctx) => {
      if (store.kind === 'postgres' && store.url === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: 'is required when store.kind is postgres (e.g. postgres://tollgate@db1:5432,db2:5432/tollgate?target_session_attrs=read-write; the password in TOLLGATE_STORE__URL)',
        });
      }
      if (store.url !== undefined && (store.kind === 'postgres' || store.kind === 'redis')) checkStoreUrl(store.kind, store.url, ctx);
      checkRedisStore(store, ctx);
    })
    .prefault({})
    .describe('The token store.'),
  metadata: z
    .strictObject({
      publish_scopes: z.boolean().default(true).describe('Publish `scopes_supported` (every scope in the registry) in the metadata.'),
      max_age: z.number().int().min(0).max(86_400).default(300).describe('The `Cache-Control: public, max-age` of the metadata and JWKS answers, in seconds.'),
    })
    .prefault({})
    .describe('The discovery answers.'),
  dpop: z
    .strictObject({
      require_nonce: z
        .boolean()
        .default(false)
        .describe(
          "Require a server nonce in every DPoP proof at the token endpoint (RFC 9449 §8). A proof without a current one is answered `400 use_dpop_nonce` with the nonce to use in a `DPoP-Nonce` header, and every DPoP token answer carries the nonce for the next proof. A nonce is a one-minute window signed with the signing key: every instance sharing the keys accepts the others' nonces, for one to two minutes.",
        ),
    })
    .prefault({})
    .describe('DPoP (RFC 9449) at the token endpoint.'),
  throttle: z
    .strictObject({
      // RFC 6749 §2.3.1: the token endpoint MUST guard against brute force. Counted per client_id
      // from one address, so a flood aimed at a client from one place does not lock that client
      // out of its other addresses, and per address across all client_ids.
      window: durationSchema(1, 86_400).default(60).describe('How long failed authentications are counted.'),
      client_failures: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(10)
        .describe('Failed authentications of one `client_id` from one address per window before that pair is refused with 429.'),
      address_failures: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(100)
        .describe('Failed authentications from one address per window, whatever the `client_id`, before it is refused with 429.'),
    })
    .prefault({})
    .describe('Refusing repeated failed authentication.'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('The lowest level logged.'),
      introspections: z
        .enum(['summary', 'each'], { error: 'must be summary or each' })
        .default('summary')
        .describe(
          'How introspections are audited at info: summary writes one line per calling client every log.summary_interval ' +
            '(counts of active, inactive and failed answers, inactive ones by reason); each writes one line per introspection',
        ),
      summary_interval: durationSchema(1, 3600)
        .default(60)
        .describe('Seconds between introspection summary lines (with log.introspections: summary), such as 30s or 5m; what is counted is also written at shutdown'),
    })
    .prefault({})
    .describe('The log on stdout.'),
}).superRefine((config, ctx) => {
  // Keys kept in a memory store would be lost, with every token they signed, when the process ends.
  if (config.keys.source === 'store' && config.store.kind === 'memory') {
    ctx.addIssue({ code: 'custom', path: ['keys', 'source'], message: 'store needs a store that outlives the process (store.kind sqlite, redis or postgres), not memory' });
  }
});

type ParsedConfig = z.infer<typeof configSchema>;

/** The validated configuration; every path in it is absolute. */
export type Config = Readonly<
  ParsedConfig & {
    /** The config file it came from, absolute. */
    file: string;
  }
>;

/** Path fields that hold file names, resolved against the config file's folder. */
const PATH_FIELDS: readonly DocPath[] = [['clients_file'], ['keys', 'dir'], ['store', 'path']];

const ENV_PREFIX = 'TOLLGATE_';
/** Variables with the prefix that are not overrides of a config field. */
const NOT_OVERRIDES = new Set(['TOLLGATE_CONFIG', 'TOLLGATE_DEBUG']);
/**
 * The variables Kubernetes gives every pod for a Service named tollgate (service links:
 * TOLLGATE_SERVICE_HOST, TOLLGATE_PORT_8080_TCP_ADDR, …). No config field has such a name, so
 * they are left alone rather than refused as unknown fields.
 */
const SERVICE_LINK = /^TOLLGATE_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$/;
/** Overrides taken as typed, never read as a number or a list: a password of digits stays a string. */
const STRING_OVERRIDES = new Set(['keys.encryption_key_file', 'keys.previous_encryption_key_file', 'store.url', 'store.username', 'store.password', 'store.sentinel.username', 'store.sentinel.password']);

export interface LoadConfigOptions {
  /** Environment to take TOLLGATE_* overrides from. */
  env?: NodeJS.ProcessEnv;
  /** Folder against which relative paths given in the environment are resolved. */
  cwd?: string;
}

/**
 * Reads tollgate.yaml, applies TOLLGATE_* overrides (TOLLGATE_STORE__PATH sets store.path) and
 * validates the result. Throws ConfigError listing every problem.
 */
export function loadConfig(file: string, options: LoadConfigOptions = {}): Config {
  const env = options.env ?? {};
  const cwd = options.cwd ?? process.cwd();
  const absolute = resolve(cwd, file);
  const source = readYamlFile(absolute, file);
  if (source.value === null || typeof source.value !== 'object' || Array.isArray(source.value)) {
    throw new ConfigError([{ file, path: '', line: 1, message: 'must be a YAML mapping of settings' }]);
  }
  const raw = source.value as Record<string, unknown>;
  const overrides = applyEnvOverrides(raw, env);

  const result = configSchema.safeParse(raw, { error: plainMessages });
  if (!result.success) {
    const problems: Problem[] = zodProblems(result.error, source, configSchema).map((p) => {
      const fromEnv = overrides.find((o) => p.path === o.path || p.path.startsWith(`${o.path}.`));
      return fromEnv ? { file: `environment ${fromEnv.name}`, path: p.path, message: p.message } : p;
    });
    throw new ConfigError(problems);
  }
  const config = result.data;
  const base = dirname(absolute);
  const resolvePath = (path: DocPath, value: string): string => {
    if (isAbsolute(value)) return value;
    // A path in the file is relative to the file; one typed in the environment, to where it was typed.
    const fromEnv = overrides.some((o) => o.path === formatPath(path));
    return resolve(fromEnv ? cwd : base, value);
  };
  return deepFreeze({
    ...config,
    file: absolute,
    clients_file: resolvePath(PATH_FIELDS[0]!, config.clients_file),
    keys: {
      ...config.keys,
      dir: resolvePath(PATH_FIELDS[1]!, config.keys.dir),
      ...(config.keys.encryption_key_file === undefined ? {} : { encryption_key_file: resolvePath(['keys', 'encryption_key_file'], config.keys.encryption_key_file) }),
      ...(config.keys.previous_encryption_key_file === undefined
        ? {}
        : { previous_encryption_key_file: resolvePath(['keys', 'previous_encryption_key_file'], config.keys.previous_encryption_key_file) }),
    },
    store: { ...config.store, path: resolvePath(PATH_FIELDS[2]!, config.store.path) },
    listen: {
      ...config.listen,
      ...(config.listen.tls === undefined
        ? {}
        : {
            tls: {
              ...(config.listen.tls.cert === undefined ? {} : { cert: resolvePath(['listen', 'tls', 'cert'], config.listen.tls.cert) }),
              ...(config.listen.tls.key === undefined ? {} : { key: resolvePath(['listen', 'tls', 'key'], config.listen.tls.key) }),
              ...(config.listen.tls.client_ca === undefined ? {} : { client_ca: resolvePath(['listen', 'tls', 'client_ca'], config.listen.tls.client_ca) }),
            },
          }),
    },
  });
}

interface Override {
  name: string;
  path: string;
}

function applyEnvOverrides(target: Record<string, unknown>, env: NodeJS.ProcessEnv): Override[] {
  const applied: Override[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || NOT_OVERRIDES.has(name) || SERVICE_LINK.test(name) || value === undefined) continue;
    const keys = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) {
      throw ConfigError.single(`environment ${name}`, 'is not a valid override name');
    }
    let node = target;
    for (const key of keys.slice(0, -1)) {
      const next = node[key];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    const path = keys.join('.');
    node[keys[keys.length - 1]!] = STRING_OVERRIDES.has(path) ? value : parseEnvValue(value);
    applied.push({ name, path });
  }
  return applied;
}

/** `9090` is a number, `true` a boolean, `[a, b]` a list; anything else stays a string. */
function parseEnvValue(value: string): unknown {
  try {
    const parsed: unknown = parseYaml(value);
    return parsed === null || typeof parsed === 'object' && !Array.isArray(parsed) ? value : parsed;
  } catch {
    return value;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
