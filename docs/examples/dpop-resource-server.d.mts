// Types of dpop-resource-server.mjs, for TypeScript users of the example (and tollgate's tests).
import type { JWTPayload, JWTVerifyGetKey } from 'jose';

export interface DpopRequest {
  method: string | undefined;
  url: string;
  authorization: string | undefined;
  dpop: string | readonly string[] | undefined;
}

export interface DpopCheckOptions {
  issuer: string;
  audience: string;
  jwks: JWTVerifyGetKey;
  seen(key: string, until: number): Promise<boolean>;
}

export function verifyDpopRequest(request: DpopRequest, options: DpopCheckOptions): Promise<JWTPayload & { client_id: string; cnf: { jkt: string } }>;
