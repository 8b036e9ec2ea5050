import { MemoryTokenStore } from '../../src/store/memory-token-store.js';
import { tokenStoreContract } from './contract.js';

tokenStoreContract('memory', async () => new MemoryTokenStore());
