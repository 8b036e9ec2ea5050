import { ConfigError } from '../shared/config-error.js';
import type { Reseal, SigningKeyRecords } from '../shared/signing-key-records.js';
import { sealPrivateKey, type Kek } from './key-encryption.js';
import { openRecords } from './store-key-set.js';

/** How many times a re-seal is tried again when the keys change under it (a rotation meanwhile). */
const ATTEMPTS = 5;

/**
 * Seals every key in the store under `next`, in one atomic change: instances and commands see
 * every key under the old key-encryption key or every key under the new one, never a mix.
 * `keks` must open every stored key. Resolves how many keys were re-sealed (0 when all already
 * were under `next`). Throws ConfigError when a stored key does not open.
 */
export async function resealAll(store: SigningKeyRecords, keks: readonly Kek[], next: Kek): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const list = await store.listSigningKeys();
    const keys = await openRecords(list.keys, keks, new Map());
    const reseals: Reseal[] = [];
    for (const k of keys) {
      if (k.kekId === next.id) continue;
      const record = await sealPrivateKey(next, k.privateKey, { createdAt: k.createdAt, signsFrom: k.signsFrom });
      reseals.push({ kid: record.kid, sealed: record.sealed, kekId: record.kekId });
    }
    if (reseals.length === 0) return 0;
    if (await store.resealSigningKeys(list.generation, reseals)) return reseals.length;
  }
  throw ConfigError.single(next.file, `the signing keys kept changing while they were being re-sealed (${ATTEMPTS} attempts); nothing was changed, run it again`);
}
