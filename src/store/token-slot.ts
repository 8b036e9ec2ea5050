import { hash } from 'node:crypto';

/**
 * Where a token's state lives in a store spread over several servers (Redis Cluster): with its
 * client's, under a short tag made from the client_id. The jti carries that tag (see newJti), so
 * a lookup by jti alone, from introspection, revocation or `tollgate token revoke --jti`, knows
 * where to look without an index, and the token's record and its client's revocation are read
 * together in one round trip.
 */

/** Characters of the tag: 24 bits of SHA-256, enough to spread clients over Redis's 16384 slots. */
export const CLIENT_TAG_LENGTH = 4;
/** Where the tag sits in a jti: after the 8 characters of its issue time. */
const TAG_OFFSET = 8;
/** The length of a jti that carries a tag: time (8), tag (4), 144 random bits (24). */
export const TAGGED_JTI_LENGTH = TAG_OFFSET + CLIENT_TAG_LENGTH + 24;

const TAGGED_JTI = new RegExp(`^[A-Za-z0-9]{${TAG_OFFSET}}[A-Za-z0-9_-]{${TAGGED_JTI_LENGTH - TAG_OFFSET}}$`);

/** The tag of a client: base64url characters only, whatever the client_id holds. */
export function clientTag(clientId: string): string {
  // The one-shot hash: a Hash object costs several times as much, once per token issued.
  return hash('sha256', clientId, 'base64url').slice(0, CLIENT_TAG_LENGTH);
}

/** The tag a jti carries, or undefined for a jti without one (issued before tags, or not by tollgate). */
export function jtiTag(jti: string): string | undefined {
  return jti.length === TAGGED_JTI_LENGTH && TAGGED_JTI.test(jti) ? jti.slice(TAG_OFFSET, TAG_OFFSET + CLIENT_TAG_LENGTH) : undefined;
}
