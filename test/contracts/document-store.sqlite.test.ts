import path from 'node:path';
import { SqliteDocumentStore } from '../../src/adapters/local/sqlite-document-store';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';
import { CONTRACT_CONTAINERS, documentStoreContract } from './document-store.contract';

documentStoreContract('SqliteDocumentStore', async () => {
  const tmp = tempDir('meridian-docstore-');
  const clock = new ManualClock();
  const store = new SqliteDocumentStore({
    path: path.join(tmp.dir, 'us', 'documents.sqlite'),
    containers: CONTRACT_CONTAINERS,
    clock,
    purgeIntervalMs: 0,
  });
  return {
    store,
    advanceClock: (ms) => clock.advance(ms),
    dispose: async () => {
      await store.close();
      tmp.remove();
    },
  };
});
