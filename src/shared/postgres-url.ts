/** One server of a PostgreSQL store's URL. */
export interface PostgresHost {
  readonly host: string;
  readonly port: number;
}

/** libpq's sslmode values, weakest first. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * Which server of several the store may use: `read-write` (libpq: a server that accepts writes)
 * or `primary` (not in recovery) pick the primary and follow a promotion; `any` takes the first
 * that answers. The store writes, so libpq's read-only and standby choices are refused.
 */
export const SESSION_ATTRS = ['any', 'read-write', 'primary'] as const;
export type SessionAttrs = (typeof SESSION_ATTRS)[number];

/** Where a PostgreSQL store connects, read from `store.url` (a libpq connection URL). */
export interface PostgresTarget {
  /** One or more servers, tried in order. */
  readonly hosts: readonly PostgresHost[];
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  readonly sslmode: SslMode;
  /** CA file for verify-ca / verify-full, or 'system' for the system's trusted CAs. */
  readonly sslrootcert?: string;
  /** Client certificate and key files (certificate authentication). */
  readonly sslcert?: string;
  readonly sslkey?: string;
  readonly targetSessionAttrs: SessionAttrs;
  /** Seconds one connection attempt may take (libpq connect_timeout); undefined: the store's own. */
  readonly connectTimeout?: number;
  readonly applicationName: string;
  /** The URL without its password, e.g. `postgres://tollgate@db1:5432,db2:5432/tollgate`: safe for messages and logs. */
  readonly display: string;
}

export const POSTGRES_URL_FORM = 'postgres://user[:password]@host[:port][,host2[:port]…]/database[?sslmode=verify-full&sslrootcert=/path/ca.pem&target_session_attrs=read-write]';

const KNOWN_PARAMS = new Set(['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'target_session_attrs', 'connect_timeout', 'application_name']);

/**
 * Reads a libpq connection URL, with one host or several (`host1:5432,host2:5432`). Throws a
 * TypeError whose message never repeats the URL, which may hold a password. Parameters the
 * store does not apply are refused rather than silently ignored.
 */
export function parsePostgresUrl(value: string): PostgresTarget {
  const scheme = /^(postgres(?:ql)?):\/\//i.exec(value);
  if (scheme === null) throw new TypeError(`must start with postgres:// or postgresql:// (${POSTGRES_URL_FORM})`);
  const rest = value.slice(scheme[0].length);
  if (rest.includes('#')) throw new TypeError('must not have a fragment (#)');
  const queryAt = rest.indexOf('?');
  const beforeQuery = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const query = queryAt === -1 ? '' : rest.slice(queryAt + 1);
  const slash = beforeQuery.indexOf('/');
  const authority = slash === -1 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash === -1 ? '' : beforeQuery.slice(slash + 1);

  // The password may hold '@' only percent-encoded; the last '@' ends the user info.
  const at = authority.lastIndexOf('@');
  const userInfo = at === -1 ? '' : authority.slice(0, at);
  const hostList = at === -1 ? authority : authority.slice(at + 1);
  let user: string;
  let password: string | undefined;
  let database: string;
  try {
    const colon = userInfo.indexOf(':');
    user = decodeURIComponent(colon === -1 ? userInfo : userInfo.slice(0, colon));
    if (colon !== -1) password = decodeURIComponent(userInfo.slice(colon + 1));
    database = decodeURIComponent(path);
  } catch {
    throw new TypeError('has a malformed percent-encoding in its user, password or database');
  }
  if (user === '') throw new TypeError(`names no user (${POSTGRES_URL_FORM})`);
  if (password === '') password = undefined;
  if (database === '' || database.includes('/')) throw new TypeError(`must name the database after the host(s): …/database (${POSTGRES_URL_FORM})`);

  const hosts = hostList.split(',').map((h) => parseHost(h));
  if (hosts.length > 16) throw new TypeError('names more than 16 hosts');

  const params = new URLSearchParams(query);
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!KNOWN_PARAMS.has(key)) {
      throw new TypeError(`has the parameter ${JSON.stringify(key.slice(0, 40))}, which tollgate does not apply (it knows ${[...KNOWN_PARAMS].join(', ')})`);
    }
    if (seen.has(key)) throw new TypeError(`has the parameter ${key} twice`);
    seen.add(key);
  }
  const sslmode = params.get('sslmode') ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(sslmode)) throw new TypeError(`has sslmode=${JSON.stringify(sslmode.slice(0, 40))}; it must be one of ${SSL_MODES.join(', ')}`);
  const tsa = params.get('target_session_attrs') ?? 'any';
  if (!(SESSION_ATTRS as readonly string[]).includes(tsa)) {
    throw new TypeError(`has target_session_attrs=${JSON.stringify(tsa.slice(0, 40))}; the store writes, so it must be read-write, primary or any`);
  }
  const files: Record<'sslrootcert' | 'sslcert' | 'sslkey', string | undefined> = { sslrootcert: undefined, sslcert: undefined, sslkey: undefined };
  for (const name of ['sslrootcert', 'sslcert', 'sslkey'] as const) {
    const file = params.get(name) ?? undefined;
    if (file === undefined) continue;
    if (!(file.startsWith('/') || (name === 'sslrootcert' && file === 'system'))) throw new TypeError(`has ${name} that is not an absolute path`);
    files[name] = file;
  }
  if ((files.sslcert === undefined) !== (files.sslkey === undefined)) throw new TypeError('must give sslcert and sslkey together');
  if (files.sslrootcert !== undefined && (sslmode === 'disable' || sslmode === 'allow' || sslmode === 'prefer')) {
    throw new TypeError(`has sslrootcert with sslmode=${sslmode}, which does not check the server's certificate: use verify-full`);
  }
  let connectTimeout: number | undefined;
  const ct = params.get('connect_timeout');
  if (ct !== null) {
    if (!/^\d{1,4}$/.test(ct) || Number(ct) < 1) throw new TypeError('has connect_timeout that is not a whole number of seconds from 1');
    connectTimeout = Number(ct);
  }
  const applicationName = params.get('application_name') ?? 'tollgate';
  const display = `postgres://${encodeURIComponent(user)}@${hosts.map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`).join(',')}/${encodeURIComponent(database)}`;
  return {
    hosts,
    database,
    user,
    ...(password === undefined ? {} : { password }),
    sslmode: sslmode as SslMode,
    ...(files.sslrootcert === undefined ? {} : { sslrootcert: files.sslrootcert }),
    ...(files.sslcert === undefined ? {} : { sslcert: files.sslcert, sslkey: files.sslkey! }),
    targetSessionAttrs: tsa as SessionAttrs,
    ...(connectTimeout === undefined ? {} : { connectTimeout }),
    applicationName,
    display,
  };
}

function parseHost(text: string): PostgresHost {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/?#@\s]+))(?::(\d{1,5}))?$/.exec(text);
  if (m === null) throw new TypeError(`has a host that is empty or malformed (${POSTGRES_URL_FORM})`);
  const port = m[3] === undefined ? 5432 : Number(m[3]);
  if (port < 1 || port > 65535) throw new TypeError('has a port outside 1-65535');
  let host: string;
  try {
    host = decodeURIComponent(m[1] ?? m[2]!);
  } catch {
    throw new TypeError('has a malformed percent-encoding in a host');
  }
  return { host, port };
}

/** `message` with every form of `password` taken out. */
export function redactPassword(message: string, password: string | undefined): string {
  if (password === undefined || password === '') return message;
  let out = message;
  for (const form of new Set([password, encodeURIComponent(password)])) out = out.split(form).join('***');
  return out;
}
