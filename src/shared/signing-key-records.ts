/**
 * A signing key as the store keeps it for every instance of a fleet: the public half in clear,
 * the private half sealed (AES-256-GCM under the key-encryption key, see keys/key-encryption.ts).
 * The store never sees a private key in clear. Declared in shared/ because both sides use it:
 * every token store implements it, and the keys (keys/store-key-set.ts) work through it, while
 * neither may import the other.
 */
export interface SigningKeyRecord {
  /** RFC 7638 thumbprint of the public key. */
  readonly kid: string;
  /** RS256, ES256 or EdDSA. */
  readonly alg: string;
  /** When the key was made, ms since the epoch. */
  readonly createdAt: number;
  /** From when it may sign, ms since the epoch: until then it is only published. */
  readonly signsFrom: number;
  /** The public JWK, as JSON text. */
  readonly publicJwk: string;
  /** The PKCS#8 private key, sealed: base64url of nonce, ciphertext and tag. */
  readonly sealed: string;
  /** Which key-encryption key sealed it (a short hash of that key, never the key). */
  readonly kekId: string;
}

/** A new seal of one record, as a key-encryption key rotation writes it. */
export interface Reseal {
  readonly kid: string;
  readonly sealed: string;
  readonly kekId: string;
}

/** The records and the generation they were read at. */
export interface SigningKeyList {
  readonly generation: number;
  /** Oldest first. */
  readonly keys: readonly SigningKeyRecord[];
}

/**
 * The signing keys of a fleet (keys.source store). Every change moves the generation on, so that
 * a running instance notices another machine's `keys rotate` by reading one number.
 */
export interface SigningKeyRecords {
  /** Every record and the generation they belong to, read together. */
  listSigningKeys(): Promise<SigningKeyList>;
  /** The generation alone: a cheap check, made every second or two by each instance. */
  signingKeyGeneration(): Promise<number>;
  /**
   * Adds a key; resolves false, adding nothing, when its kid is already there or, with
   * `onlyIfNone`, when the store holds any key at all: instances starting at once against an
   * empty store then make exactly one first key between them.
   */
  addSigningKey(record: SigningKeyRecord, options?: { onlyIfNone?: boolean }): Promise<boolean>;
  /** Removes a key; resolves false when there was no such kid. */
  removeSigningKey(kid: string): Promise<boolean>;
  /**
   * Replaces the seal of the records named, all or none, only if the generation is still
   * `generation` (else resolves false and changes nothing: read again and retry). A record not
   * named keeps its seal.
   */
  resealSigningKeys(generation: number, reseals: readonly Reseal[]): Promise<boolean>;
}
