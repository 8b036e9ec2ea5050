import type { Client } from '../clients/registry.js';
import type { Config } from '../config/config.js';
import { verifySecret } from '../crypto/secrets.js';
import { describeStore } from '../store/create-token-store.js';

/**
 * The demo client of config/clients.yaml, whose secret the README publishes for the quick start.
 * Anyone can get tokens for it, so a server that loads it is told so at once.
 */
export const DEMO_CLIENT = Object.freeze({
  clientId: 'demo-service',
  secret: 'tollgate-demo-secret-for-local-trials-only',
  hash: '$argon2id$v=19$m=19456,p=1,t=2$9evyxol885uS46Shmh4JmA$owH6bZVRX3uOOHTejdAwsWZGdJIg7wiLr7Zmkmnltj8',
});

/** What a started server loaded, for the `server.started` line. */
export interface Loaded {
  url: string;
  clients: number;
  kids: readonly string[];
  signingKid: string;
  threadPool: number;
}

/**
 * The fields of the `server.started` line and its message: the config file, the registry and how
 * many clients it holds, the keys and which one signs, the store and where it is (a Redis URL
 * without its credentials), and the URL it listens on. `event` and `url` come first: tests and
 * scripts find the URL with a plain pattern.
 */
export function startedLine(config: Config, loaded: Loaded): { fields: Record<string, unknown>; message: string } {
  const store = describeStore(config.store);
  const clients = `${loaded.clients} client${loaded.clients === 1 ? '' : 's'}`;
  const keys = `${loaded.kids.length} key${loaded.kids.length === 1 ? '' : 's'}`;
  const keysAt = config.keys.source === 'store' ? 'the store' : config.keys.dir;
  return {
    fields: {
      event: 'server.started',
      url: loaded.url,
      issuer: config.issuer,
      config: config.file,
      clients_file: config.clients_file,
      clients: loaded.clients,
      keys_source: config.keys.source,
      ...(config.keys.source === 'store' ? {} : { keys_dir: config.keys.dir }),
      kids: loaded.kids,
      signing_kid: loaded.signingKid,
      store: config.store.kind,
      store_at: store,
      // Set by the tollgate command (see cli/thread-pool.cts) unless the operator set it.
      thread_pool: loaded.threadPool,
    },
    message: `tollgate listening on ${loaded.url} as ${config.issuer}: ${clients} from ${config.clients_file}; ${keys} in ${keysAt}, ${loaded.signingKid} signs; ${config.store.kind} store ${store}; config ${config.file}`,
  };
}

export interface Warning {
  fields: Record<string, unknown>;
  message: string;
}

/**
 * Where the configured issuer and the address the server listens on disagree in a way that is
 * a mistake rather than a proxy in front. An https issuer on a public host while listening on
 * loopback is the usual deployment behind a proxy and says nothing. Warned:
 * - a loopback issuer while listening beyond loopback (the container config left as shipped):
 *   the metadata sends every client to an address that is only this machine;
 * - a loopback issuer on another port than the one listened on: the metadata's URLs lead nowhere;
 * - a plain http issuer on a host that is not loopback: RFC 8414 §2 wants https, and clients
 *   would send their secrets in clear text.
 */
export function issuerWarnings(config: Config, url: string): Warning[] {
  const issuer = new URL(config.issuer);
  const listening = new URL(url);
  const issuerLoopback = isLoopbackHost(issuer.hostname);
  const listenLoopback = isLoopbackHost(config.listen.host);
  const warning = (reason: string, message: string): Warning => ({
    fields: { event: 'config.issuer_mismatch', reason, issuer: config.issuer, url },
    message,
  });
  const warnings: Warning[] = [];
  if (issuerLoopback && !listenLoopback) {
    warnings.push(
      warning(
        'loopback_issuer',
        `issuer ${config.issuer} is a loopback URL, but the server listens on ${config.listen.host}: clients elsewhere would be sent to this machine's own loopback; set issuer (TOLLGATE_ISSUER) to the URL they reach tollgate at`,
      ),
    );
  } else if (issuerLoopback && listenLoopback && config.listen.port !== 0 && portOf(issuer) !== Number(listening.port)) {
    warnings.push(
      warning(
        'port',
        `issuer ${config.issuer} names port ${portOf(issuer)}, but the server listens on ${listening.port}: the metadata's endpoint URLs lead where nothing listens`,
      ),
    );
  }
  if (issuer.protocol === 'http:' && !issuerLoopback) {
    warnings.push(
      warning(
        'plain_http',
        `issuer ${config.issuer} is plain http on a host that is not loopback: clients would send secrets unencrypted; serve it over https (a TLS-terminating proxy) and set issuer to the https URL`,
      ),
    );
  }
  return warnings;
}

/**
 * The clients that authenticate with the published demo secret: its hash copied as is, or a
 * `demo-service` whose secret is still the published one (checked with argon2, only for that id,
 * so a registry of any size costs at most a few verifications).
 */
export async function demoClients(clients: readonly Client[]): Promise<string[]> {
  const found: string[] = [];
  for (const client of clients) {
    if (client.disabled) continue;
    if (client.secrets.some((s) => s.hash === DEMO_CLIENT.hash)) {
      found.push(client.clientId);
      continue;
    }
    if (client.clientId !== DEMO_CLIENT.clientId) continue;
    for (const s of client.secrets) {
      if (await verifySecret(s.hash, DEMO_CLIENT.secret)) {
        found.push(client.clientId);
        break;
      }
    }
  }
  return found;
}

export function demoClientWarning(file: string, clientIds: readonly string[]): Warning {
  return {
    fields: { event: 'registry.demo_client', file, client_ids: clientIds },
    message: `the registry holds the demo client (${clientIds.join(', ')}), whose secret is published in the README: anyone can get its tokens; remove it (tollgate client remove ${clientIds[0]}) before this server faces a network`,
  };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function portOf(url: URL): number {
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}
