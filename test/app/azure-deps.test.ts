/**
 * The azure composition as a regional app gets it from infra (MERIDIAN_SERVED_REGIONS = its own
 * region, MERIDIAN_SEARCH_ENDPOINTS = every search service of the boundary). Nothing here
 * reaches Azure: the SDK clients are built but the search calls are replaced.
 */
import { describe, expect, it } from 'vitest';
import { retrievalOf } from '../../functions/lib/use-cases';
import { createDeps } from '../../src/composition';
import { loadConfig } from '../../src/config';
import { AppError } from '../../src/domain/errors';
import type { SearchHit, SearchQuery } from '../../src/ports/search-index';

const EASTUS_APP = {
  WEBSITE_INSTANCE_ID: 'abc',
  MERIDIAN_SERVED_REGIONS: 'eastus',
  AUTH_AUDIENCE: 'api://meridian',
  AUTH_JWKS_URL: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
  COSMOS_ENDPOINT: 'https://meridian-us.documents.azure.com',
  SERVICEBUS_NAMESPACE: 'meridian.servicebus.windows.net',
  SEARCH_ENDPOINT: 'https://srch-eastus.search.windows.net',
  MERIDIAN_BLOB_URL: 'https://meridianus.blob.core.windows.net',
  MERIDIAN_GLOBAL_BLOB_URL: 'https://meridianglobal.blob.core.windows.net',
  MERIDIAN_SEARCH_ENDPOINTS: 'eastus=https://srch-eastus.search.windows.net,westus2=https://srch-westus2.search.windows.net',
};

describe('createDeps (azure): search failover inside the boundary', () => {
  it('indexes its own region and reads the other region of the boundary when its own index fails', async () => {
    const credential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const deps = createDeps(loadConfig(EASTUS_APP), { credential, logSink: () => undefined });
    // Indexers and sweeps run on searchIndexes only: the app's own index.
    expect(deps.searchIndexes.map((s) => [s.region, s.primary, s.index.name])).toEqual([['eastus', true, 'meridian-eastus']]);
    expect(deps.failoverSearchIndexes.map((s) => [s.region, s.index.name])).toEqual([['westus2', 'meridian-westus2']]);

    const asked: string[] = [];
    const own = deps.searchIndexes[0]!.index;
    const other = deps.failoverSearchIndexes[0]!.index;
    own.search = async () => {
      asked.push(own.name);
      throw new AppError('unavailable', 'eastus search is down');
    };
    const hit: SearchHit = {
      chunkId: 'd1:1:0',
      documentId: 'd1',
      documentName: 'leave.md',
      content: 'Leave is 28 days.',
      headingPath: '',
      tokenCount: 5,
      score: 1,
    };
    other.search = async (q: SearchQuery) => {
      asked.push(other.name);
      expect(q.tenantIds).toEqual(['tenant-acme-corp', '_shared']);
      return [hit];
    };
    deps.queryEmbedder = {
      dimensions: 1536,
      embed: async (texts) => texts.map(() => new Float32Array(1536)),
    } as typeof deps.queryEmbedder;
    deps.documents.read = (async () => undefined) as typeof deps.documents.read;

    const hits = await retrievalOf(deps).search('tenant-acme-corp', 'leave', 5);
    expect(asked).toEqual(['meridian-eastus', 'meridian-westus2']);
    expect(hits).toEqual([{ ...hit, region: 'westus2' }]);
  });
});
