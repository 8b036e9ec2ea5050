/** Where a Redis store connects, read from `store.url`. */
export interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  /** rediss://: TLS, with the server's certificate checked against the host name. */
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  /** The URL without its credentials, e.g. `redis://10.0.0.5:6379/0`: safe for messages and logs. */
  readonly display: string;
}

export const REDIS_URL_FORM = 'redis://[[user]:password@]host[:port][/db] or rediss://… for TLS';

/**
 * Reads a single-node Redis URL. Throws a TypeError whose message never repeats the URL, which
 * may hold a password. Query options are refused rather than half-supported: every connection
 * setting that matters is fixed by the store.
 */
export function parseRedisUrl(value: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`must be a URL of the form ${REDIS_URL_FORM}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new TypeError(`must start with redis:// or rediss:// (${REDIS_URL_FORM})`);
  }
  if (url.hostname === '') throw new TypeError(`names no host (${REDIS_URL_FORM})`);
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) {
    throw new TypeError('must not have a query or fragment: options in the URL are not supported');
  }
  const db = /^\/?$/.test(url.pathname) ? 0 : /^\/(\d{1,5})$/.exec(url.pathname)?.[1];
  if (db === undefined) throw new TypeError('must end with /N, a database number, or nothing after the port');

  let username: string | undefined;
  let password: string | undefined;
  try {
    // WHATWG URL keeps user info percent-encoded; a password with @ or : must be written encoded.
    if (url.username !== '') username = decodeURIComponent(url.username);
    if (url.password !== '') password = decodeURIComponent(url.password);
  } catch {
    throw new TypeError('has a malformed percent-encoding in its user or password');
  }
  if (username !== undefined && password === undefined) throw new TypeError('names a user but no password (redis://user:password@host)');
  const port = url.port === '' ? 6379 : Number(url.port);
  const tls = url.protocol === 'rediss:';
  return {
    // The URL keeps brackets around an IPv6 address; the socket wants the bare address.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    db: Number(db),
    tls,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    display: `${url.protocol}//${url.hostname}:${port}/${db}`,
  };
}

/** One server of a Sentinel or Cluster list. */
export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

export const REDIS_NODE_FORM = 'host:port (an IPv6 address in brackets: [::1]:6379)';

/** Reads `host:port` (or `[v6]:port`), as store.sentinel.nodes and store.cluster.nodes list them. */
export function parseRedisNode(value: string): RedisNodeAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65_535) throw new TypeError(`must be ${REDIS_NODE_FORM}`);
  return { host: match[1] ?? match[2]!, port };
}
