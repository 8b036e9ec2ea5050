import { Document, isMap, isNode, isScalar, isSeq, type Node } from 'yaml';
import { RegistryFile } from '../clients/registry-file.js';
import type { Client } from '../clients/registry.js';
import { ConfigError } from '../shared/config-error.js';
import { loadConfig, type Config } from '../config/config.js';
import { CLIENT_FLAGS, federationFlags, isoSeconds, parseClientFlags } from './client-flags.js';
import type { Io } from './io.js';
import { configPath, parseCommand, positionals, UsageError } from './usage.js';

function registryOptions(config: Config) {
  return { defaultAudience: config.tokens.audience };
}

/** Opens the registry and finds the client, or says in one line that it is not there. */
function openClient(config: Config, clientId: string): { file: RegistryFile; client: Client } {
  const file = RegistryFile.open(config.clients_file, registryOptions(config));
  const client = file.client(clientId);
  if (client === undefined) throw new UsageError(`no client ${JSON.stringify(clientId)} in ${config.clients_file}`);
  return { file, client };
}

/** `$argon2id$v=19$m=19456,t=2,p=1$…`: the parameters say what a check costs; salt and digest are only noise here. */
function shortHash(hash: string): string {
  const cut = hash.split('$');
  return cut.length === 6 ? `${cut.slice(0, 4).join('$')}$…` : '…';
}

/** Fields of a public JWK that identify it; the key material itself is long and says nothing to a reader. */
const JWK_LABELS = ['kty', 'crv', 'kid', 'alg', 'use'] as const;

export async function showClient(args: string[], io: Io, help: () => number): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, { json: { type: 'boolean' } });
  if (values.help) return help();
  const [clientId] = positionals(pos, ['ID'], 'tollgate client show ID [--json]');
  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const { file, client: c } = openClient(config, clientId!);
  const raw = file.entryValue(clientId!);
  const now = Date.now();
  const view: Record<string, unknown> = {
    client_id: c.clientId,
    disabled: c.disabled,
    auth_methods: [...c.authMethods],
    scopes: [...c.scopes],
    default_scopes: [...c.defaultScopes],
    audiences: c.audiences.length > 0 ? [...c.audiences] : [...config.tokens.audience],
    token_ttl: c.tokenTtl ?? config.tokens.ttl,
    introspect: c.introspect,
  };
  if (c.dpopBoundAccessTokens === true) view.dpop_bound_access_tokens = true;
  if (raw.allowed_ips !== undefined) view.allowed_ips = raw.allowed_ips;
  if (c.secrets.length > 0) {
    view.secrets = c.secrets.map((s) => ({ hash: shortHash(s.hash), ...(s.expiresAt === undefined ? {} : { expires_at: isoSeconds(s.expiresAt) }) }));
  }
  if (c.jwksUri !== undefined) view.jwks_uri = c.jwksUri;
  if (c.jwks !== undefined) {
    view.jwks = { keys: c.jwks.map((k) => Object.fromEntries(JWK_LABELS.filter((f) => k[f] !== undefined).map((f) => [f, k[f]]))) };
  }
  if (c.tlsSubject !== undefined) view[`tls_client_auth_${c.tlsSubject.kind}`] = c.tlsSubject.value;

  if (values.json) {
    io.out(JSON.stringify(view, null, 2));
    return 0;
  }
  const doc = new Document(view);
  // Where a value comes from the config rather than the entry, or a secret no longer works, say so.
  const notes: Record<string, string | undefined> = {
    audiences: c.audiences.length === 0 ? ' from tokens.audience' : undefined,
    token_ttl: c.tokenTtl === undefined ? ' seconds, from tokens.ttl' : ' seconds',
  };
  const top: unknown = doc.contents;
  for (const pair of isMap(top) ? top.items : []) {
    if (!isScalar(pair.key)) continue;
    const value: unknown = pair.value;
    if (isSeq(value) && value.items.every((item) => isScalar(item))) value.flow = true;
    const note = notes[String(pair.key.value)];
    if (note !== undefined && isNode(value)) value.comment = note;
  }
  c.secrets.forEach((s, i) => {
    if (s.expiresAt !== undefined && s.expiresAt <= now) {
      const node = doc.getIn(['secrets', i, 'expires_at'], true) as Node | undefined;
      if (node !== undefined) node.comment = ' expired';
    }
  });
  io.out(doc.toString({ lineWidth: 0, flowCollectionPadding: false }).replace(/\n$/, ''));
  return 0;
}

export async function updateClient(args: string[], io: Io, help: () => number): Promise<number> {
  const { values, positionals: pos } = parseCommand(args, {
    ...CLIENT_FLAGS,
    'no-introspect': { type: 'boolean' },
    'no-require-dpop': { type: 'boolean' },
    'any-ip': { type: 'boolean' },
    federated: { type: 'string' },
    'spiffe-id': { type: 'string' },
  });
  if (values.help) return help();
  const [clientId] = positionals(pos, ['ID'], 'tollgate client update ID [options]');
  const fields = parseClientFlags(values, 'client update', true);
  if (values.introspect && values['no-introspect']) throw new UsageError('give --introspect or --no-introspect, not both');
  if (values['allowed-ip'] !== undefined && values['any-ip']) throw new UsageError('give --allowed-ip or --any-ip, not both');
  const changes: Record<string, unknown> = { ...fields };
  if (values['any-ip']) changes.allowed_ips = undefined;
  if (values.introspect) changes.introspect = true;
  if (values['no-introspect']) changes.introspect = false;
  if (values['require-dpop'] && values['no-require-dpop']) throw new UsageError('give --require-dpop or --no-require-dpop, not both');
  if (values['require-dpop']) changes.dpop_bound_access_tokens = true;
  if (values['no-require-dpop']) changes.dpop_bound_access_tokens = undefined;
  const federation = federationFlags(values.federated, values['spiffe-id'], values['auth-method'] !== undefined);
  if (Object.keys(changes).length === 0 && federation === undefined) {
    throw new UsageError(
      'nothing to change: give --scope, --audience, --ttl, --auth-method, --allowed-ip, --any-ip, --introspect, --no-introspect, --require-dpop, --no-require-dpop, --federated or --spiffe-id',
    );
  }

  const config = loadConfig(configPath(values.config, io.env), { env: io.env, cwd: io.cwd });
  const { file } = openClient(config, clientId!);
  const raw = file.entryValue(clientId!);
  const notes: string[] = [];
  if (federation !== undefined) {
    // A new identity for the same way of authenticating (a service account renamed, a workload
    // moved): a change of method would leave secrets or identities behind, so it is refused.
    const method = federation.kind === 'federated' ? 'federated_jwt' : 'spiffe_jwt';
    const methods = Array.isArray(raw.auth_methods) ? (raw.auth_methods as unknown[]) : [];
    if (!methods.includes(method)) {
      throw new UsageError(`client "${clientId}" does not authenticate with ${method}: --${federation.kind === 'federated' ? 'federated' : 'spiffe-id'} changes the identity of a ${method} client (to change its method, remove it and add it again)`);
    }
    if (federation.kind === 'federated') changes.federated_identity = { issuer: federation.issuer, subject: federation.subject };
    else changes.spiffe_id = federation.spiffeId === clientId ? undefined : federation.spiffeId;
  }
  // An empty list is what the registry means by leaving the field out.
  if (fields.scopes?.length === 0) changes.scopes = undefined;
  if (changes.introspect === false && raw.introspect === undefined) changes.introspect = undefined;
  if (fields.scopes !== undefined && Array.isArray(raw.default_scopes)) {
    // default_scopes must stay within scopes: keep the ones that still are.
    const kept = (raw.default_scopes as unknown[]).filter((s) => fields.scopes!.includes(s as string));
    if (kept.length < raw.default_scopes.length) {
      changes.default_scopes = kept.length > 0 ? kept : undefined;
      notes.push(kept.length > 0 ? `default_scopes is now ${kept.join(' ')}` : 'default_scopes removed: it now grants every scope');
    }
  }
  file.update(clientId!, changes);
  try {
    file.save(registryOptions(config));
  } catch (err) {
    if (!(err instanceof ConfigError) || /cannot write/.test(err.message)) throw err;
    // The problem is in a version of the file that was not written: its line numbers mean nothing.
    const p = err.problems[0]!;
    throw new UsageError(`not changed: the client would be invalid: ${p.path.replace(/^clients\[\d+\]\.?/, '') || 'entry'}: ${p.message}`);
  }
  const changed = Object.keys(changes).filter((k) => k !== 'default_scopes');
  io.err(`updated ${changed.join(', ')} of client "${clientId}" in ${config.clients_file}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`);
  return 0;
}
