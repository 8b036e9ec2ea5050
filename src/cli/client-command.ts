import { RegistryFile, type SecretEdit } from '../clients/registry-file.js';
import { SECRET_AUTH_METHODS, type Client, type TrustedIssuer } from '../clients/registry.js';
import { spiffeTrustDomain } from '../clients/spiffe-id.js';
import { loadRegistryFile } from '../clients/yaml-registry.js';
import { loadConfig, type Config } from '../config/config.js';
import { MAX_TTL, MIN_TTL } from '../shared/limits.js';
import { generateSecret, hashSecret } from '../crypto/secrets.js';
import { parseDuration } from '../shared/duration.js';
import { isClientId } from '../shared/syntax.js';
import type { Io } from './io.js';
import { CLIENT_FLAGS, federationFlags, isoSeconds, parseClientFlags, type FederationFlags } from './client-flags.js';
import { showClient, updateClient } from './client-show-update.js';
import { openStoreForCli, revokedClientTokens, storeWriteError } from './token-command.js';
import { formatTable } from './table.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

/** How long the older secrets keep working after rotate-secret when --keep-old is not given. */
const DEFAULT_KEEP_OLD = '24h';
/**
 * The longest --keep-old. A rotation is meant to retire the old secret once its services have
 * moved; a grace of months would leave a possibly leaked secret working. A longer one can still
 * be written into the file by hand.
 */
const MAX_KEEP_OLD_TEXT = '30d';
const MAX_KEEP_OLD = parseDuration(MAX_KEEP_OLD_TEXT)!;

export const CLIENT_HELP = `Usage: tollgate client <command> [options]

Manage the client registry (the clients_file the config names).

Commands:
  add ID              register a client; prints its new secret once on stdout
                      (none with --federated or --spiffe-id: such a client has no secret)
  update ID           change a client's scopes, audiences, TTL, methods or addresses
  show ID             print the client's entry (hashes shortened to their parameters)
  rotate-secret ID    give the client a new secret, printed once on stdout; its
                      older secrets stop working once --keep-old has passed
  list                show every client and when each of its secrets expires
  disable ID          refuse the client's authentication and revoke its tokens (its entry stays)
  enable ID           undo disable
  remove ID           delete the client's entry and revoke its tokens

Options for add and update (update replaces only what is given; the file keeps its comments):
  --scope "a b"          scopes it may request (space-separated; may repeat)
  --audience URI         an audience it may request; the first is its default (may repeat)
  --ttl SECONDS          lifetime of its tokens (${MIN_TTL}..${MAX_TTL}, or 15m, 1h)
  --auth-method M        ${SECRET_AUTH_METHODS.join(' or ')} (may repeat; default: both).
                         Key-based clients (private_key_jwt, tls_client_auth,
                         self_signed_tls_client_auth) have no secret: add them to the
                         registry file by hand (docs/guides/key-based-clients.md); update
                         takes those methods too.
  --allowed-ip CIDR      an address or CIDR block it may connect from (may repeat)
  --introspect           may introspect any client's tokens (for resource servers)
  --require-dpop         every token request must carry a DPoP proof
                         (dpop_bound_access_tokens; docs/guides/dpop.md)

Workload identity federation (docs/guides/federation.md): add makes such a client, update
changes the identity of a client that already authenticates that way:
  --federated ISSUER:SUBJECT
                         a federated_jwt client: it authenticates with tokens of the
                         trusted issuer named ISSUER (trusted_issuers in the registry)
                         whose sub is exactly SUBJECT, e.g.
                         prod-cluster:system:serviceaccount:payments:billing
  --spiffe-id ID         a spiffe_jwt client: it authenticates with JWT-SVIDs whose sub
                         is this SPIFFE ID, in a trusted spiffe_trust_domain

Options for update only:
  --no-introspect        may introspect only its own tokens
  --no-require-dpop      DPoP proofs become optional again
  --any-ip               remove its allowed addresses: any address may connect

Options for show:
  --json                 one JSON document instead of YAML

Options for rotate-secret:
  --keep-old FOR         how long its older secrets keep working (default: ${DEFAULT_KEEP_OLD}):
                         30s, 15m, 24h, 7d, at most ${MAX_KEEP_OLD_TEXT}; 0 stops them now.
                         One set to expire sooner keeps its time; one that has
                         already expired is removed from the file.

Options for list:
  --json                 one JSON document instead of a table

Options for disable and remove:
  --registry-only        change the registry alone, revoking nothing in the token store
                         (the memory store's tokens live in the server and cannot be
                         revoked from here; without it, that store is refused)

Common options:
  --config FILE          config file (default: $TOLLGATE_CONFIG, else config/tollgate.yaml)
  -h, --help             this text

A running server picks up registry changes within a second or two (or at once on SIGHUP).`;

export async function clientCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('missing command (see tollgate client --help)');
  if (sub === '--help' || sub === '-h' || sub === 'help') return help(io);
  switch (sub) {
    case 'add':
      return addClient(rest, io);
    case 'rotate-secret':
      return rotateSecret(rest, io);
    case 'list':
      return listClients(rest, io);
    case 'show':
      return showClient(rest, io, () => help(io));
    case 'update':
      return updateClient(rest, io, () => help(io));
    case 'disable':
    case 'enable':
    case 'remove':
      return changeClient(sub, rest, io);
    default:
      throw new UsageError(`unknown command "client ${sub}" (see tollgate client --help)`);
  }
}

function registryOptions(config: Config) {
  return { defaultAudience: config.tokens.audience };
}

async function addClient(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { ...CLIENT_FLAGS, federated: { type: 'string' }, 'spiffe-id': { type: 'string' } });
  if (values.help) return help(io);
  const [clientId] = positionals(pos, ['ID'], 'tollgate client add ID [options]');
  if (!isClientId(clientId!)) throw new UsageError('ID must be 1 to 255 visible ASCII characters or spaces');
  if (!/^[A-Za-z0-9._~-]+$/.test(clientId!)) {
    io.err(`note: "${clientId}" holds characters clients must percent-encode in Basic auth; letters, digits and . _ ~ - are plainer`);
  }

  const federation = federationFlags(values.federated, values['spiffe-id'], values['auth-method'] !== undefined);
  const fields = parseClientFlags(values, 'client add', false);

  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  if ((fields.audiences ?? []).length === 0 && config.tokens.audience.length === 0) {
    // Said here, in terms of the command line; the registry check would name a line of a file not yet written.
    throw new UsageError(`--audience is required: ${config.file} sets no tokens.audience for clients without their own`);
  }
  const file = RegistryFile.open(config.clients_file, { ...registryOptions(config), createIfMissing: true });
  if (file.has(clientId!)) throw new UsageError(`client ${JSON.stringify(clientId)} already exists in ${config.clients_file}`);
  if (federation !== undefined) checkFederation(federation, file.trustedIssuers(), config.clients_file);

  const secret = federation === undefined ? generateSecret() : undefined;
  const entry: Record<string, unknown> = { client_id: clientId };
  if (secret !== undefined) entry.secrets = [{ hash: await hashSecret(secret) }];
  if (federation?.kind === 'federated') {
    entry.auth_methods = ['federated_jwt'];
    entry.federated_identity = { issuer: federation.issuer, subject: federation.subject };
  } else if (federation?.kind === 'spiffe') {
    entry.auth_methods = ['spiffe_jwt'];
    // The SPIFFE ID defaults to the client_id: written only when it differs.
    if (federation.spiffeId !== clientId) entry.spiffe_id = federation.spiffeId;
  }
  // In the order the registry reference lists them; an empty list is the default, left out.
  for (const key of ['auth_methods', 'scopes', 'audiences', 'token_ttl'] as const) {
    const value = fields[key];
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) entry[key] = value;
  }
  if (values.introspect) entry.introspect = true;
  if (values['require-dpop']) entry.dpop_bound_access_tokens = true;
  if (fields.allowed_ips !== undefined && fields.allowed_ips.length > 0) entry.allowed_ips = fields.allowed_ips;
  file.add(entry);
  file.save(registryOptions(config));

  if (federation?.kind === 'federated') {
    io.err(`added client "${clientId}" to ${config.clients_file}: it authenticates with tokens of "${federation.issuer}" whose sub is ${JSON.stringify(federation.subject)}`);
  } else if (federation?.kind === 'spiffe') {
    io.err(`added client "${clientId}" to ${config.clients_file}: it authenticates with JWT-SVIDs of ${federation.spiffeId}`);
  } else {
    io.out(secret!);
    io.err(`added client "${clientId}" to ${config.clients_file}; the secret above is shown only once`);
  }
  return 0;
}

function checkFederation(federation: FederationFlags, issuers: readonly TrustedIssuer[], file: string): void {
  if (federation.kind === 'federated') {
    const found = issuers.find((i) => i.name === federation.issuer);
    if (found === undefined || found.issuer === undefined || found.spiffeTrustDomain !== undefined) {
      const names = issuers.filter((i) => i.issuer !== undefined && i.spiffeTrustDomain === undefined).map((i) => i.name);
      throw new UsageError(
        `${file} has no trusted issuer named "${federation.issuer}" for --federated (${names.length === 0 ? 'add one under trusted_issuers first' : `it has ${names.join(', ')}`})`,
      );
    }
    return;
  }
  const domain = spiffeTrustDomain(federation.spiffeId)!;
  if (!issuers.some((i) => i.spiffeTrustDomain === domain)) {
    throw new UsageError(`${file} trusts no SPIFFE trust domain "${domain}": add it under trusted_issuers (spiffe_trust_domain, jwks_uri) first`);
  }
}

async function rotateSecret(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { 'keep-old': { type: 'string' } });
  if (values.help) return help(io);
  const [clientId] = positionals(pos, ['ID'], 'tollgate client rotate-secret ID [--keep-old FOR]');
  const keepOld = parseDuration(values['keep-old'] ?? DEFAULT_KEEP_OLD);
  if (keepOld === undefined) {
    throw new UsageError(`--keep-old must be a duration like 30s, 15m, 24h or 7d (or 0 to stop the older secrets now), not ${JSON.stringify(values['keep-old'])}`);
  }
  if (keepOld > MAX_KEEP_OLD) {
    throw new UsageError(`--keep-old may be at most ${MAX_KEEP_OLD_TEXT}, not ${values['keep-old']}`);
  }

  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const file = RegistryFile.open(config.clients_file, registryOptions(config));
  const client = file.client(clientId!);
  if (client === undefined) throw new UsageError(`no client ${JSON.stringify(clientId)} in ${config.clients_file}`);
  if (!client.authMethods.some((m) => (SECRET_AUTH_METHODS as readonly string[]).includes(m))) {
    throw new UsageError(`client ${JSON.stringify(clientId)} authenticates with ${client.authMethods.join(', ')}, not with a secret`);
  }

  const now = Date.now();
  // The file holds whole seconds. Rounded up, so the older secrets get at least the time asked
  // for; 0 means now, rounded down, so they stop at once rather than up to a second later.
  const until = keepOld === 0 ? Math.floor(now / 1000) * 1000 : Math.ceil((now + keepOld * 1000) / 1000) * 1000;
  const untilText = isoSeconds(until);
  let removed = 0;
  let limited = 0;
  let kept = 0;
  const edits = client.secrets.map((s): SecretEdit => {
    // Already expired: it no longer works anywhere, and keeping it only clutters the entry.
    if (s.expiresAt !== undefined && s.expiresAt <= now) {
      removed++;
      return 'remove';
    }
    if (s.expiresAt !== undefined && s.expiresAt <= until) {
      kept++;
      return 'keep';
    }
    limited++;
    return { expiresAt: untilText };
  });

  const secret = generateSecret();
  file.rotateSecrets(clientId!, edits, await hashSecret(secret));
  file.save(registryOptions(config));

  io.out(secret);
  io.err(`added a new secret to client "${clientId}" in ${config.clients_file}; the secret above is shown only once`);
  if (limited > 0) {
    io.err(`${plural(limited, 'older secret')} ${keepOld === 0 ? 'stop working now' : `keep${limited === 1 ? 's' : ''} working until ${untilText}`}`);
  }
  if (kept > 0) io.err(`${plural(kept, 'older secret')} already set to expire sooner kept ${kept === 1 ? 'its time' : 'their times'}`);
  if (removed > 0) io.err(`removed ${plural(removed, 'secret')} that had already expired`);
  return 0;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

async function changeClient(action: 'disable' | 'enable' | 'remove', args: string[], io: Io): Promise<number> {
  const revokes = action !== 'enable';
  const { values, positionals: pos } = parseCommand(args, revokes ? { 'registry-only': { type: 'boolean' } } : {});
  if (values.help) return help(io);
  const [clientId] = positionals(pos, ['ID'], `tollgate client ${action} ID${revokes ? ' [--registry-only]' : ''}`);
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const file = RegistryFile.open(config.clients_file, registryOptions(config));
  if (!file.has(clientId!)) throw new UsageError(`no client ${JSON.stringify(clientId)} in ${config.clients_file}`);
  if (action === 'remove' && file.count() === 1 && !config.allow_empty_registry) {
    // A running server would refuse the emptied registry and keep serving the client.
    throw new UsageError(`"${clientId}" is the only client: a running server refuses a registry with no clients (allow_empty_registry is false); disable it instead`);
  }
  if (action === 'remove') file.remove(clientId!);
  else file.setDisabled(clientId!, action === 'disable');
  let revoked = '';
  if (revokes && values['registry-only'] !== true) {
    // Revoked in the store too, so every server sharing it refuses the client's tokens at
    // once, before it has re-read the registry, and re-enabling or re-adding the client does
    // not revive them. The registry is saved only once that has worked.
    const store = openStoreForCli(config, ' (--registry-only changes the registry alone)');
    try {
      revoked = `; revoked ${revokedClientTokens(config, clientId!, await store.revokeClient(clientId!, Date.now()))}`;
    } catch (err) {
      throw storeWriteError(config, err);
    } finally {
      await store.close();
    }
  }
  file.save(registryOptions(config));
  io.err(`${action === 'remove' ? 'removed' : `${action}d`} client "${clientId}" in ${config.clients_file}${revoked}`);
  return 0;
}

async function listClients(args: string[], io: Io): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { json: { type: 'boolean' } });
  if (values.help) return help(io);
  positionals(pos, [], 'tollgate client list [--json]');
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const clients = loadRegistryFile(config.clients_file, registryOptions(config)).all();
  if (values.json) {
    io.out(JSON.stringify({ clients: clients.map(describe) }, null, 2));
    return 0;
  }
  if (clients.length === 0) {
    io.err(`no clients in ${config.clients_file}`);
    return 0;
  }
  const now = Date.now();
  const rows = [
    ['CLIENT_ID', 'STATUS', 'AUTH_METHODS', 'SCOPES', 'AUDIENCES', 'TTL', 'SECRETS'],
    ...clients.map((c) => {
      const d = describe(c);
      return [
        d.client_id,
        d.disabled ? 'disabled' : 'enabled',
        d.auth_methods.join(','),
        d.scopes.join(' ') || '-',
        d.audiences.join(' ') || '-',
        d.token_ttl === undefined ? '-' : String(d.token_ttl),
        c.secrets.map((s) => secretExpiry(s.expiresAt, now)).join(', ') || '-',
      ];
    }),
  ];
  for (const line of formatTable(rows)) io.out(line);
  return 0;
}

function secretExpiry(expiresAt: number | undefined, now: number): string {
  if (expiresAt === undefined) return 'no expiry';
  return `${expiresAt <= now ? 'expired' : 'expires'} ${isoSeconds(expiresAt)}`;
}

function describe(c: Client) {
  return {
    client_id: c.clientId,
    disabled: c.disabled,
    auth_methods: [...c.authMethods],
    scopes: [...c.scopes],
    default_scopes: [...c.defaultScopes],
    audiences: [...c.audiences],
    token_ttl: c.tokenTtl,
    secrets: c.secrets.map((s) => ({ expires_at: s.expiresAt === undefined ? undefined : new Date(s.expiresAt).toISOString() })),
    // Workload identity federation (absent from the JSON when not set).
    federated_identity: c.federatedIdentity,
    spiffe_id: c.spiffeId,
  };
}

function help(io: Io): number {
  io.out(CLIENT_HELP);
  return 0;
}
