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

const configSchema = z.strictObject({
  issuer: z
    .string({ error: 'is required: the URL resource servers see as iss (e.g. https://auth.example.com)' })
    .refine(isIssuer, { error: 'must be an http(s) URL with no query, fragment, credentials or trailing slash' }),
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number({ error: 'must be a port number' }).int().min(0).max(65_535).default(8080),
      // HTTPS served directly. client_ca asks clients for a certificate (optional, so other
      // methods keep working on the same port) and enables the RFC 8705 methods.
      tls: z
        .strictObject({
          cert: z.string().min(1).optional(),
          key: z.string().min(1).optional(),
          client_ca: z.string().min(1).optional(),
        })
        .optional(),
      // Behind a TLS-terminating proxy: the request header carrying the client certificate
      // (URL-encoded PEM, as nginx's $ssl_client_escaped_cert), believed only from trust_proxy.
      client_cert_header: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/, { error: 'must be an HTTP header name' })
        .transform((h) => h.toLowerCase())
        .optional(),
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
    .prefault({}),
  // Proxies whose X-Forwarded-For (and client_cert_header) is believed; empty: none.
  trust_proxy: z
    .array(z.string().refine((s) => parseCidr(s) !== undefined, { error: 'must be an IP address or CIDR block' }))
    .default([]),
  client_auth: z
    .strictObject({
      // RFC 7523 lets an assertion's aud be the token endpoint URL; tollgate wants the issuer
      // only unless told otherwise, since several audiences for one assertion is what made
      // audience confusion (CVE-2025-27370) possible.
      accept_token_endpoint_audience: z.boolean().default(false),
    })
    .prefault({}),
  clients_file: z.string().min(1).default('./clients.yaml'),
  // A reload that would leave no client is refused unless this is true: an emptied or truncated
  // file (`: > clients.yaml`, a failed template) must not lock every client out at once.
  allow_empty_registry: z.boolean().default(false),
  tokens: z
    .strictObject({
      ttl: ttlSchema.default(900),
      audience: z.array(audienceSchema).default([]),
    })
    .prefault({}),
  keys: z
    .strictObject({
      dir: z.string().min(1).default('../data/keys'),
      // RS256 is what every resource server accepts; ES256 and EdDSA sign several times faster.
      algorithm: z.enum(['RS256', 'ES256', 'EdDSA'], { error: 'must be RS256, ES256 or EdDSA' }).default('RS256'),
      // In seconds once parsed. A new key is published this long before it signs, so resource
      // servers that cache the JWKS (metadata.max_age, or their own cache) fetch it before they
      // meet a token it signed.
      publish_before_use: durationSchema(0, 7 * 86_400).default(600),
    })
    .prefault({}),
  store: z
    .strictObject({
      kind: z.enum(['sqlite', 'memory', 'redis', 'postgres'], { error: 'must be sqlite, memory, redis or postgres' }).default('sqlite'),
      path: z.string().min(1).default('../data/tollgate.db'),
      url: z.string({ error: `must be a URL of the form ${REDIS_URL_FORM}, or a postgres:// URL` }).optional(),
      prefix: z
        .string({ error: 'must be a string' })
        .regex(/^\S+$/, { error: 'must be non-empty and contain no whitespace' })
        .default('tollgate:'),
      // Redis Sentinel: the master's name and the sentinels to ask where it is.
      sentinel: z
        .strictObject({
          master: z.string({ error: 'is required: the name the sentinels monitor the primary under' }).regex(/^\S+$/, { error: 'must be non-empty and contain no whitespace' }),
          nodes: redisNodesSchema,
          // The sentinels' own credentials, when they require one (requirepass in sentinel.conf).
          username: z.string({ error: 'must be a string' }).min(1).optional(),
          password: z.string({ error: 'must be a string' }).min(1).optional(),
        })
        .superRefine((sentinel, ctx) => {
          if (sentinel.username !== undefined && sentinel.password === undefined) {
            ctx.addIssue({ code: 'custom', path: ['username'], message: 'needs store.sentinel.password too (TOLLGATE_STORE__SENTINEL__PASSWORD keeps it out of the file)' });
          }
        })
        .optional(),
      // Redis Cluster: some of its nodes; the rest are found from them.
      cluster: z.strictObject({ nodes: redisNodesSchema }).optional(),
      // With sentinel or cluster (store.url carries its own): the data servers' ACL user and password.
      username: z.string({ error: 'must be a string' }).min(1).optional(),
      password: z.string({ error: 'must be a string' }).min(1).optional(),
      // With sentinel or cluster: TLS to every server, as rediss:// is for store.url.
      tls: z.boolean({ error: 'must be true or false' }).optional(),
      // WAIT: a revocation is answered 200 only once this many replicas have acknowledged it.
      min_replicas: z.number({ error: 'must be a number of replicas' }).int().min(0).max(16).optional(),
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
    .prefault({}),
  metadata: z
    .strictObject({
      publish_scopes: z.boolean().default(true),
      max_age: z.number().int().min(0).max(86_400).default(300),
    })
    .prefault({}),
  throttle: z
    .strictObject({
      // RFC 6749 §2.3.1: the token endpoint MUST guard against brute force. Counted per client_id
      // from one address, so a flood aimed at a client from one place does not lock that client
      // out of its other addresses, and per address across all client_ids.
      window: durationSchema(1, 86_400).default(60),
      client_failures: z.number().int().min(1).max(1_000_000).default(10),
      address_failures: z.number().int().min(1).max(1_000_000).default(100),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
    .prefault({}),
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
/** Overrides taken as typed, never read as a number or a list: a password of digits stays a string. */
const STRING_OVERRIDES = new Set(['store.url', 'store.username', 'store.password', 'store.sentinel.username', 'store.sentinel.password']);

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
    keys: { ...config.keys, dir: resolvePath(PATH_FIELDS[1]!, config.keys.dir) },
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
    if (!name.startsWith(ENV_PREFIX) || NOT_OVERRIDES.has(name) || value === undefined) continue;
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
