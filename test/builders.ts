import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { stringify } from 'yaml';
import { basic, form, FORM, hashOf } from './helpers.js';

/**
 * One registry entry as a test describes it: the client id, its plaintext secret(s) (hashed here,
 * once per secret per test file), and any other registry field written as in clients.yaml
 * (snake_case: scopes, audiences, introspect, allowed_ips, auth_methods, disabled, …).
 */
export interface ClientSpec {
  id: string;
  /** A plaintext secret, or several; each becomes one { hash } entry. */
  secret?: string | readonly string[];
  /** Secret entries with an expiry or a ready-made hash, after those of `secret`. */
  secrets?: readonly ({ secret: string; expires_at?: string } | { hash: string; expires_at?: string })[];
  [field: string]: unknown;
}

/** A registry entry; spread extra fields in, e.g. client({ id: 'svc', secret: S, audiences: [API], introspect: true }). */
export function client(spec: ClientSpec): ClientSpec {
  return spec;
}

/** The usual audience of the tests' clients. */
export const API = 'https://api.test';

async function entry({ id, secret, secrets, ...fields }: ClientSpec): Promise<Record<string, unknown>> {
  const plain = secret === undefined ? [] : typeof secret === 'string' ? [secret] : secret;
  const listed = await Promise.all([
    ...plain.map(async (s) => ({ hash: await hashOf(s) })),
    ...(secrets ?? []).map(async ({ expires_at, ...s }) => ({
      hash: 'hash' in s ? s.hash : await hashOf(s.secret),
      ...(expires_at === undefined ? {} : { expires_at }),
    })),
  ]);
  return { client_id: id, ...(listed.length === 0 ? {} : { secrets: listed }), ...fields };
}

/** clients.yaml text for these clients, their secrets hashed with argon2id. */
export async function registryYaml(clients: readonly ClientSpec[]): Promise<string> {
  return stringify({ clients: await Promise.all(clients.map(entry)) }, { lineWidth: 0 });
}

type Params = Record<string, string | string[]>;

export interface RequestSpec {
  /** Client id and secret: sent as HTTP Basic, or in the body with `auth: 'post'`. */
  client?: string;
  secret?: string;
  auth?: 'basic' | 'post';
  /** Form parameters (for the token endpoint, grant_type defaults to client_credentials). */
  params?: Params;
  /** The peer address the server sees. */
  ip?: string;
  headers?: Record<string, string>;
}

function post(app: FastifyInstance, url: string, spec: RequestSpec, params: Params): Promise<LightMyRequestResponse> {
  const { client: id, secret, auth = 'basic', ip, headers } = spec;
  const credentials = id === undefined || secret === undefined ? undefined : ([id, secret] as const);
  const body = credentials !== undefined && auth === 'post' ? { client_id: credentials[0], client_secret: credentials[1], ...params } : params;
  return app.inject({
    method: 'POST',
    url,
    headers: { ...FORM, ...(credentials !== undefined && auth === 'basic' ? { authorization: basic(...credentials) } : {}), ...headers },
    payload: form(body),
    ...(ip === undefined ? {} : { remoteAddress: ip }),
  });
}

/** POST /oauth2/token, a client_credentials grant unless params say otherwise. */
export function tokenRequest(app: FastifyInstance, spec: RequestSpec = {}): Promise<LightMyRequestResponse> {
  return post(app, '/oauth2/token', spec, { grant_type: 'client_credentials', ...spec.params });
}

/** POST /oauth2/introspect for this token. */
export function introspect(app: FastifyInstance, token: string, spec: RequestSpec = {}): Promise<LightMyRequestResponse> {
  return post(app, '/oauth2/introspect', spec, { token, ...spec.params });
}

/** POST /oauth2/revoke for this token. */
export function revoke(app: FastifyInstance, token: string, spec: RequestSpec = {}): Promise<LightMyRequestResponse> {
  return post(app, '/oauth2/revoke', spec, { token, ...spec.params });
}
