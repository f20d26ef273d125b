import { AzureKeyCredential } from '@azure/search-documents';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AzureSearchIndex, documentKey, indexSchema } from '../../src/adapters/azure/azure-search-index';
import { ManualClock } from '../../src/adapters/local/clock';
import { FakeAzureSearch } from '../helpers/fake-azure-search';
import { chunk, CONTRACT_DIMENSIONS, runSearchIndexContract, wordVector } from './search-index.contract';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const API_VERSION = '2025-09-01';
const make = (fake: FakeAzureSearch): AzureSearchIndex =>
  new AzureSearchIndex({
    endpoint: fake.endpoint,
    indexName: 'meridian-eastus',
    dimensions: CONTRACT_DIMENSIONS,
    credential: new AzureKeyCredential('test-key'),
    clock: new ManualClock(Date.UTC(2026, 0, 2)),
    allowInsecureConnection: true,
  });

runSearchIndexContract('AzureSearchIndex (local REST fake)', async () => {
  const fake = await new FakeAzureSearch('meridian-eastus', API_VERSION, 'test-key').start();
  return {
    index: make(fake),
    async cleanup() {
      await fake.stop();
      // Every request the contract made was one the fake accepted as well-formed.
      expect(fake.violations).toEqual([]);
    },
  };
});

describe('AzureSearchIndex sends exactly these requests', () => {
  let fake: FakeAzureSearch;
  let index: AzureSearchIndex;
  beforeAll(async () => {
    fake = await new FakeAzureSearch('meridian-eastus', API_VERSION, 'test-key').start();
    index = make(fake);
  });
  afterAll(() => fake.stop());
  afterEach(() => {
    expect(fake.violations).toEqual([]);
    fake.requests.length = 0;
  });

  it('upserts with mergeOrUpload, a base64url key and every field', async () => {
    const c = chunk('tenant-acme-corp', 'doc-1', 2, 0, 'hello world');
    await index.upsertChunks([c]);
    const [r] = fake.requests;
    expect(r?.method).toBe('POST');
    expect(r?.path).toBe("/indexes('meridian-eastus')/docs/search.index");
    expect(r?.query).toEqual({ 'api-version': API_VERSION });
    expect(r?.headers['api-key']).toBe('test-key');
    expect(r?.body).toEqual({
      value: [
        {
          '@search.action': 'mergeOrUpload',
          id: documentKey('doc-1:2:0'),
          chunkId: 'doc-1:2:0',
          tenantId: 'tenant-acme-corp',
          documentId: 'doc-1',
          name: 'doc-1.md',
          tier: 'kb',
          version: 2,
          etag: '0x8DC2',
          ordinal: 0,
          headingPath: 'Runbook > Failover',
          content: 'hello world',
          tokenCount: 2,
          contentVector: Array.from(c.vector),
          indexedAt: '2026-01-02T00:00:00.000Z',
        },
      ],
    });
    expect(documentKey('doc-1:2:0')).toMatch(/^[A-Za-z0-9_\-=]+$/);
  });

  it('searches hybrid with the tenant filter, exclusions and a pre-filtered vector query', async () => {
    const v = wordVector('hello');
    await index.search({
      tenantIds: ['tenant-acme-corp', '_shared'],
      text: 'hello',
      vector: v,
      top: 5,
      excludeDocumentIds: ["o'brien", 'doc-9'],
    });
    const [r] = fake.requests;
    expect(r?.path).toBe("/indexes('meridian-eastus')/docs/search.post.search");
    expect(r?.query).toEqual({ 'api-version': API_VERSION });
    expect(r?.body).toEqual({
      search: 'hello',
      searchMode: 'any',
      filter: "search.in(tenantId, 'tenant-acme-corp,_shared', ',') and not search.in(documentId, 'o''brien,doc-9', ',')",
      select: 'chunkId,documentId,name,content,headingPath,tokenCount',
      top: 5,
      vectorQueries: [{ kind: 'vector', vector: Array.from(v), k: 50, fields: 'contentVector' }],
      vectorFilterMode: 'preFilter',
    });
  });

  it('deletes by filter: search for keys, then delete them', async () => {
    await index.upsertChunks([chunk('t1', 'doc-1', 1, 0, 'a'), chunk('t1', 'doc-1', 2, 0, 'b')]);
    fake.requests.length = 0;
    expect(await index.deleteOlderVersions('t1', 'doc-1', 2)).toBe(1);
    expect(fake.requests.map((r) => [r.path, r.body])).toEqual([
      [
        "/indexes('meridian-eastus')/docs/search.post.search",
        { search: '*', filter: "tenantId eq 't1' and documentId eq 'doc-1' and version lt 2", select: 'id', top: 1000 },
      ],
      [
        "/indexes('meridian-eastus')/docs/search.index",
        { value: [{ '@search.action': 'delete', id: documentKey('doc-1:1:0') }] },
      ],
    ]);
  });

  it('maps an unreachable service to unavailable', async () => {
    const dead = new AzureSearchIndex({
      endpoint: 'http://127.0.0.1:1',
      indexName: 'x',
      dimensions: 4,
      credential: new AzureKeyCredential('k'),
      clock: new ManualClock(),
      allowInsecureConnection: true,
    });
    await expect(dead.check()).rejects.toMatchObject({ code: 'unavailable' });
  });
});

describe('indexSchema', () => {
  it('matches infra/search/index.json (the schema infra applies) for the same name and dimensions', () => {
    const file = JSON.parse(readFileSync(path.resolve(__dirname, '../../infra/search/index.json'), 'utf8')) as {
      name: string;
      fields: { dimensions?: number }[];
    };
    const dims = file.fields.find((f) => f.dimensions)?.dimensions as number;
    expect(indexSchema(file.name, dims)).toEqual(file);
  });
});
