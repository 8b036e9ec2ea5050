import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, type Problem } from '../shared/config-error.js';
import { parseCidr } from '../shared/address-list.js';
import { audienceSchema, durationSchema, ttlSchema } from '../shared/field-schemas.js';
import { parsePostgresUrl } from '../shared/postgres-url.js';
import { parseRedisUrl, REDIS_URL_FORM } from '../shared/redis-url.js';
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
    })
    .superRefine((store, ctx) => {
      if (store.kind === 'redis' && store.url === undefined) {
        ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required when store.kind is redis (e.g. redis://127.0.0.1:6379/0)' });
      }
      if (store.kind === 'postgres' && store.url === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: 'is required when store.kind is postgres (e.g. postgres://tollgate@db1:5432,db2:5432/tollgate?target_session_attrs=read-write; the password in TOLLGATE_STORE__URL)',
        });
      }
      if (store.url !== undefined) checkStoreUrl(store.kind, store.url, ctx);
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
    node[keys[keys.length - 1]!] = parseEnvValue(value);
    applied.push({ name, path: keys.join('.') });
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
