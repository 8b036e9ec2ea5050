import { MemoryTokenStore } from '../../src/store/memory-token-store.js';
import { failureCountersContract } from './contract/failure-counters.js';
import { replayClaimsContract } from './contract/replay-claims.js';
import { signingKeyRecordsContract } from './contract/signing-key-records.js';
import { storeLifecycleContract } from './contract/store-lifecycle.js';
import { tokenRecordsContract } from './contract/token-records.js';

const open = async (): Promise<MemoryTokenStore> => new MemoryTokenStore();
tokenRecordsContract('memory', open);
replayClaimsContract('memory', open);
failureCountersContract('memory', open);
storeLifecycleContract('memory', open);
// One process holds a memory store: another "instance" is the same object.
signingKeyRecordsContract('memory', open, async (store) => store);
