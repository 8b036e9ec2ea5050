import { describe, expect, it } from 'vitest';
import type { StoreLifecycle } from '../../../src/store/token-store.js';

/** The behaviour every store's connection must show. `open` returns a fresh store. */
export function storeLifecycleContract(name: string, open: () => Promise<StoreLifecycle>): void {
  describe(`${name} StoreLifecycle contract`, () => {
    it('answers ping while open', async () => {
      const store = await open();
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
