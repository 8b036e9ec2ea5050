// The second baseline: node-oidc-provider (the certified Node OAuth server) configured for the
// same job as tollgate in the benchmark: one client with the client credentials grant
// (client_secret_basic or client_secret_post, plaintext secret as oidc-provider stores it), the
// same scope, RS256 JWT access tokens for the same audience (through a resource indicator), and a
// resource-server client that introspects.
//
// node-oidc-provider does not introspect JWT access tokens (their state lives in the token), so
// the introspection scenario uses opaque tokens: a second client, svc-opaque, gets no default
// resource and therefore opaque tokens. Issued tokens are kept in a plain Map (MapAdapter below):
// oidc-provider's own development adapter is an LRU of 1,000 entries, which would evict the
// introspected token after a thousand issued ones and would keep less state than tollgate does.
//
//   node bench/oidc-baseline.mjs [--port N]      (or PORT=N; 0 picks a free port)
//   OIDC_CLIENT_SECRET, OIDC_RS_SECRET, OIDC_SCOPE, OIDC_AUDIENCE, OIDC_TTL
//
// It prints one JSON line {"event":"oidc.started","url":…} once it listens.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(values.port ?? process.env.PORT ?? 0);
const secret = process.env.OIDC_CLIENT_SECRET ?? 'oidc-secret-0123456789abcdefghijklmnopqrst';
const rsSecret = process.env.OIDC_RS_SECRET ?? 'oidc-rs-secret-0123456789abcdefghijklmnopq';
const scope = process.env.OIDC_SCOPE ?? 'bench:read';
const audience = process.env.OIDC_AUDIENCE ?? 'https://api.bench.test';
const ttl = Number(process.env.OIDC_TTL ?? 3600);

const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig' };

/** oidc-provider's storage interface over one Map per model; entries expire when read. */
class MapAdapter {
  static stores = new Map();

  constructor(model) {
    if (!MapAdapter.stores.has(model)) MapAdapter.stores.set(model, new Map());
    this.store = MapAdapter.stores.get(model);
  }

  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [id, { payload }] of this.store) if (payload.uid === uid) return this.find(id);
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, { payload }] of this.store) if (payload.userCode === userCode) return this.find(id);
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, { payload }] of this.store) if (payload.grantId === grantId) this.store.delete(id);
  }
}

const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const client = (clientId, clientSecret) => ({
  client_id: clientId,
  client_secret: clientSecret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic', // oidc-provider accepts post for it too
  scope,
});

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [client('svc', secret), client('svc-opaque', secret), { ...client('rs', rsSecret), scope: undefined }],
  jwks: { keys: [signingJwk] },
  scopes: [scope],
  clientDefaults: { grant_types: ['client_credentials'], response_types: [], id_token_signed_response_alg: 'RS256' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // svc's tokens get the audience without asking (as tollgate's default audience works);
      // svc-opaque gets no resource and so opaque tokens that can be introspected.
      defaultResource: async (_ctx, client, oneOf) => oneOf ?? (client?.clientId === 'svc' ? audience : undefined),
      getResourceServerInfo: async () => ({
        scope,
        audience,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
      useGrantedResource: async () => false,
    },
  },
  ttl: { ClientCredentials: ttl },
});
provider.on('server_error', (_ctx, err) => console.error(JSON.stringify({ event: 'oidc.server_error', message: err.message })));

server.on('request', provider.callback());
console.log(JSON.stringify({ event: 'oidc.started', url: issuer }));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
