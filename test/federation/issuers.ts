import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Pki } from '../tls-fixtures.js';

// Workload identity issuers as the tests serve them on loopback over HTTPS (a test CA), and
// tokens shaped exactly like the ones the real platforms mint.

export interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  key: CryptoKey;
  jwk: JWK;
}

export async function signingKey(alg: 'RS256' | 'ES256', kid: string, use?: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg };
  if (use !== undefined) jwk.use = use;
  return { kid, alg, key: privateKey, jwk };
}

/**
 * One HTTPS server holding every test issuer: each path answers the JSON document set for it
 * (a discovery document, a JWK Set, a SPIFFE bundle), and counts how often it was asked.
 */
export class IssuerServer {
  readonly documents = new Map<string, () => unknown>();
  readonly hits = new Map<string, number>();
  #server: Server | undefined;
  origin = '';

  async start(pki: Pki): Promise<void> {
    this.#server = createServer({ cert: pki.pem('server.pem'), key: pki.pem('server.key') }, (req, res) => {
      const path = new URL(req.url ?? '/', 'https://x').pathname;
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const doc = this.documents.get(path);
      if (doc === undefined) {
        res.statusCode = 404;
        res.end('not found');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(doc()));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.origin = `https://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  /** An OpenID Connect issuer at origin + path, publishing its discovery document and `keys()`. */
  oidc(path: string, keys: () => JWK[], options: { wellKnown?: 'openid-configuration' | 'oauth-authorization-server'; claimedIssuer?: string } = {}): string {
    const issuer = `${this.origin}${path}`;
    const jwksPath = `${path}/.well-known/jwks`;
    const docPath = options.wellKnown === 'oauth-authorization-server' ? `/.well-known/oauth-authorization-server${path}` : `${path}/.well-known/openid-configuration`;
    this.documents.set(docPath, () => ({
      issuer: options.claimedIssuer ?? issuer,
      jwks_uri: `${this.origin}${jwksPath}`,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'environment'],
      scopes_supported: ['openid'],
    }));
    this.documents.set(jwksPath, () => ({ keys: keys() }));
    return issuer;
  }

  close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      // Kept-alive connections of tollgate's fetcher would hold the server open.
      server.closeAllConnections();
    });
  }
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/** Claims to set; an `undefined` value removes that claim. */
export type Overrides = Record<string, unknown>;

function sign(claims: Record<string, unknown>, key: SigningKey, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.key);
}

/**
 * A Kubernetes projected service account token (serviceAccountToken volume source with
 * `audience` set to tollgate's issuer): aud is an array, it lives exactly expirationSeconds
 * (3600 by default), nbf = iat, and it carries the `kubernetes.io` claim naming the pod.
 */
export function kubernetesToken(o: { issuer: string; audience: string; key: SigningKey; now: number; namespace?: string; serviceAccount?: string; overrides?: Overrides }): Promise<string> {
  const iat = seconds(o.now);
  const namespace = o.namespace ?? 'payments';
  const sa = o.serviceAccount ?? 'billing';
  return sign(
    {
      aud: [o.audience],
      exp: iat + 3600,
      iat,
      iss: o.issuer,
      jti: randomUUID(),
      'kubernetes.io': {
        namespace,
        node: { name: 'worker-2', uid: randomUUID() },
        pod: { name: `${sa}-7d9f8c6b5-x2x4q`, uid: randomUUID() },
        serviceaccount: { name: sa, uid: randomUUID() },
      },
      nbf: iat,
      sub: `system:serviceaccount:${namespace}:${sa}`,
      ...o.overrides,
    },
    o.key,
  );
}

/**
 * A GitHub Actions OIDC token of a job that runs in an environment (`permissions: id-token:
 * write`, audience asked for with core.getIDToken): aud a string, nbf ten minutes before iat,
 * exp five minutes after, sub repo:OWNER/REPO:environment:NAME, and the job's context claims.
 */
export function githubActionsToken(o: { issuer: string; audience: string; key: SigningKey; now: number; overrides?: Overrides }): Promise<string> {
  const iat = seconds(o.now);
  return sign(
    {
      jti: randomUUID(),
      sub: 'repo:octo-org/octo-repo:environment:production',
      environment: 'production',
      aud: o.audience,
      ref: 'refs/heads/main',
      sha: 'd6f5c9d4a4b1f0e5c3b2a1908f7e6d5c4b3a2910',
      repository: 'octo-org/octo-repo',
      repository_owner: 'octo-org',
      actor_id: '12',
      repository_visibility: 'private',
      repository_id: '74',
      repository_owner_id: '65',
      run_id: '8104567891',
      run_number: '10',
      run_attempt: '1',
      runner_environment: 'github-hosted',
      actor: 'octocat',
      workflow: 'deploy',
      head_ref: '',
      base_ref: '',
      event_name: 'push',
      ref_type: 'branch',
      workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
      job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
      iss: o.issuer,
      nbf: iat - 600,
      exp: iat + 300,
      iat,
      ...o.overrides,
    },
    o.key,
    { typ: 'JWT', x5t: 'cTQ1ZTE4NzQ5NTk3ZTRiMGEyYjVhYTk3OTg2NGRm' },
  );
}

/**
 * A SPIFFE JWT-SVID as SPIRE's workload API hands it out (JWT-SVID specification §3): sub the
 * SPIFFE ID, aud an array, exp five minutes after iat, and no iss unless the server sets one.
 */
export function jwtSvid(o: { spiffeId: string; audience: string; key: SigningKey; now: number; overrides?: Overrides }): Promise<string> {
  const iat = seconds(o.now);
  return sign({ aud: [o.audience], exp: iat + 300, iat, sub: o.spiffeId, ...o.overrides }, o.key, { typ: 'JWT' });
}

/** A token signed with HMAC (HS256): a shared secret is no proof of a workload's identity. */
export function hmacToken(claims: Record<string, unknown>, kid: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', 'not-a-key').update(input).digest('base64url')}`;
}
