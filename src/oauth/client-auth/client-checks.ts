import { listHas } from '../../shared/address-list.js';
import type { AuthMethod, Client } from '../../clients/registry.js';
import { InvalidClient } from '../errors.js';
import { isClientId } from '../../shared/syntax.js';
import type { ClientAuthDeps, ClientAuthRequest } from './authenticator.js';

// Checks every authenticator makes, in the order it needs them.

/** The registered client of that id, if any; an id that is not RFC 6749 VSCHAR names none. */
export function findClient(clientId: string, deps: Pick<ClientAuthDeps, 'registry'>): Client | undefined {
  return isClientId(clientId) ? deps.registry.get(clientId) : undefined;
}

/** Whether this client may authenticate with `method` from this address; else InvalidClient. */
export function checkClientMay(client: Client, method: AuthMethod, request: Pick<ClientAuthRequest, 'ip'>): void {
  if (client.disabled) throw new InvalidClient('client_disabled', client.clientId);
  if (!client.authMethods.includes(method)) throw new InvalidClient(`method_not_allowed:${method}`, client.clientId);
  if (client.allowedIps !== undefined && !listHas(client.allowedIps, request.ip)) throw new InvalidClient('address_not_allowed', client.clientId);
}

/** The registered, enabled client that may use `method` from this address; else InvalidClient. */
export function registeredClient(clientId: string, method: AuthMethod, request: Pick<ClientAuthRequest, 'ip'>, deps: Pick<ClientAuthDeps, 'registry'>): Client {
  const client = findClient(clientId, deps);
  if (client === undefined) throw new InvalidClient('unknown_client', clientId);
  checkClientMay(client, method, request);
  return client;
}

/**
 * Runs a check that costs little (a client assertion's signature, a certificate match) under
 * the failure throttle: refused with 429 when this client_id or address has no failures left
 * (FailureThrottle.check), and counted once it fails as the client's fault (recordFailure on
 * a 401; a 503 is not counted). Unlike a secret's argon2, such a check is not worth a hit
 * held while it runs; see FailureThrottle.check.
 */
export async function withFailuresCounted<T>(
  clientId: string,
  request: Pick<ClientAuthRequest, 'ip'>,
  deps: Pick<ClientAuthDeps, 'throttle'>,
  check: () => Promise<T>,
): Promise<T> {
  await deps.throttle?.check(clientId, request.ip);
  try {
    return await check();
  } catch (err) {
    if (err instanceof InvalidClient) await deps.throttle?.recordFailure(clientId, request.ip);
    throw err;
  }
}
