/**
 * `SearchIndex` over an Azure AI Search index (`@azure/search-documents` SearchClient).
 * The index itself is created by infra (`infra/search/index.json`, applied by the postdeploy
 * hook; `indexSchema` below describes the same shape): this adapter never creates resources.
 *
 * - Document keys: Azure keys allow only letters, digits, `_`, `-`, `=`; chunk ids hold `:`, so
 *   the key is the base64url of the chunk id and the chunk id is a field of its own.
 * - Tenant confinement: every query carries `search.in(tenantId, '<ids>', ',')` as its
 *   filter, and the vector query is pre-filtered (`vectorFilterMode: 'preFilter'`), so both
 *   the keyword and the vector path run inside the tenants asked for.
 * - Hybrid: `searchText` (searchMode `any`) plus one `kind: 'vector'` query on
 *   `contentVector` with k = 50; the service fuses them with Reciprocal Rank Fusion.
 * - Deletes by filter are search-then-delete: keys matching the filter, 1,000 at a time.
 */
import type { KeyCredential, TokenCredential } from '@azure/core-auth';
import { SearchClient, type SearchOptions } from '@azure/search-documents';
import { AppError } from '../../domain/errors';
import { checkSearchQuery } from '../search-spec';
import { HYBRID_CANDIDATES } from '../../domain/rank-fusion';
import type { Clock } from '../../ports/clock';
import type { IndexedChunk, IndexedDocument, SearchHit, SearchIndex, SearchQuery } from '../../ports/search-index';

/** The document shape in the index (infra/search/index.json). */
export interface AzureChunkDocument {
  id: string;
  chunkId: string;
  tenantId: string;
  documentId: string;
  name: string;
  tier: string;
  version: number;
  etag: string;
  ordinal: number;
  headingPath: string;
  content: string;
  tokenCount: number;
  contentVector?: number[];
  indexedAt?: string;
}

export const VECTOR_FIELD = 'contentVector';
export const SEMANTIC_CONFIGURATION = 'default';
const PAGE = 1000;
const SELECT = ['chunkId', 'documentId', 'name', 'content', 'headingPath', 'tokenCount'] as const;

/** The key of a chunk's search document. */
export function documentKey(chunkId: string): string {
  return Buffer.from(chunkId, 'utf8').toString('base64url');
}

/** An OData string literal (single quotes doubled). */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** `search.in(field, 'a,b', ',')`; refuses values holding the delimiter rather than mis-filtering. */
export function searchIn(field: string, values: readonly string[]): string {
  for (const v of values) if (v.includes(',')) throw new AppError('validation_failed', `${field} values must not contain ','`);
  return `search.in(${field}, ${odataString(values.join(','))}, ',')`;
}

export interface AzureSearchIndexOptions {
  /** `https://<service>.search.windows.net`. */
  endpoint: string;
  indexName: string;
  dimensions: number;
  /** Managed identity in Azure (`DefaultAzureCredential`); an `AzureKeyCredential` for tests. */
  credential: TokenCredential | KeyCredential;
  clock: Clock;
  /** Name of the index's semantic configuration to rerank with (`queryType: 'semantic'`); off when absent. */
  semanticConfiguration?: string;
  /** Service API version; the SDK's default when absent. */
  serviceVersion?: string;
  /** Allow plain http (the loopback fake in tests only). */
  allowInsecureConnection?: boolean;
}

export class AzureSearchIndex implements SearchIndex {
  readonly name: string;
  readonly dimensions: number;
  readonly client: SearchClient<AzureChunkDocument>;

  constructor(private readonly options: AzureSearchIndexOptions) {
    this.name = options.indexName;
    this.dimensions = options.dimensions;
    this.client = new SearchClient<AzureChunkDocument>(options.endpoint, options.indexName, options.credential, {
      ...(options.serviceVersion ? { serviceVersion: options.serviceVersion } : {}),
      ...(options.allowInsecureConnection ? { allowInsecureConnection: true } : {}),
      // Retries belong to the caller (message redelivery, failover to the other region's index).
      retryOptions: { maxRetries: 0 },
    });
  }

  async upsertChunks(chunks: readonly IndexedChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const indexedAt = new Date(this.options.clock.now()).toISOString();
    const docs: AzureChunkDocument[] = chunks.map((c) => {
      if (!(c.vector instanceof Float32Array) || c.vector.length !== this.dimensions) {
        throw new AppError('validation_failed', `chunk ${c.id}: vector must be a Float32Array of ${this.dimensions} dimensions`);
      }
      return {
        id: documentKey(c.id),
        chunkId: c.id,
        tenantId: c.tenantId,
        documentId: c.documentId,
        name: c.documentName,
        tier: c.tier,
        version: c.version,
        etag: c.etag,
        ordinal: c.ordinal,
        headingPath: c.headingPath,
        content: c.content,
        tokenCount: c.tokenCount,
        contentVector: Array.from(c.vector),
        indexedAt,
      };
    });
    for (let i = 0; i < docs.length; i += PAGE) {
      const result = await this.call('written', () =>
        this.client.mergeOrUploadDocuments(docs.slice(i, i + PAGE), { throwOnAnyFailure: false }),
      );
      const failed = result.results.filter((r) => !r.succeeded);
      if (failed.length) {
        const retryable = failed.some(
          (r) => r.statusCode === 503 || r.statusCode === 429 || r.statusCode === 409 || r.statusCode === 422,
        );
        throw new AppError(
          retryable ? 'unavailable' : 'validation_failed',
          `search index ${this.name}: ${failed.length} chunk(s) not written (${failed[0]?.statusCode}: ${failed[0]?.errorMessage ?? ''})`,
        );
      }
    }
  }

  async deleteDocument(tenantId: string, documentId: string): Promise<number> {
    return this.deleteByFilter(`tenantId eq ${odataString(tenantId)} and documentId eq ${odataString(documentId)}`);
  }

  async deleteOlderVersions(tenantId: string, documentId: string, keepVersion: number): Promise<number> {
    if (!Number.isInteger(keepVersion)) throw new AppError('validation_failed', 'keepVersion must be an integer');
    return this.deleteByFilter(
      `tenantId eq ${odataString(tenantId)} and documentId eq ${odataString(documentId)} and version lt ${keepVersion}`,
    );
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    const { tenants, excluded } = checkSearchQuery(query, this.dimensions);
    if (tenants.length === 0) return [];
    const text = query.text.trim();
    if (!text && !query.vector) return [];
    const filter = [searchIn('tenantId', tenants), ...(excluded.length ? [`not ${searchIn('documentId', excluded)}`] : [])].join(
      ' and ',
    );
    const semantic = this.options.semanticConfiguration && text;
    return this.call('queried', async () => {
      const base: SearchOptions<AzureChunkDocument> = {
        filter,
        top: query.top,
        select: [...SELECT],
        ...(text ? { searchMode: 'any' as const } : {}),
        ...(query.vector
          ? {
              vectorSearchOptions: {
                queries: [
                  {
                    kind: 'vector' as const,
                    vector: Array.from(query.vector),
                    kNearestNeighborsCount: HYBRID_CANDIDATES,
                    fields: [VECTOR_FIELD as 'contentVector'],
                  },
                ],
                filterMode: 'preFilter' as const,
              },
            }
          : {}),
      };
      const options: SearchOptions<AzureChunkDocument> = semantic
        ? {
            ...base,
            queryType: 'semantic',
            semanticSearchOptions: { configurationName: this.options.semanticConfiguration as string },
          }
        : base;
      const response = await this.client.search(text || undefined, options);
      const hits: SearchHit[] = [];
      for await (const r of response.results) {
        if (hits.length >= query.top) break;
        const d = r.document as Pick<AzureChunkDocument, (typeof SELECT)[number]>;
        hits.push({
          chunkId: d.chunkId,
          documentId: d.documentId,
          documentName: d.name,
          content: d.content,
          headingPath: d.headingPath ?? '',
          tokenCount: d.tokenCount ?? 0,
          score: r.rerankerScore ?? r.score,
        });
      }
      return hits;
    });
  }

  async documentVersions(tenantId?: string): Promise<IndexedDocument[]> {
    // Keyset paging over the key (sortable) instead of $skip, which stops at 100,000.
    const counts = new Map<string, { tenantId: string; documentId: string; versions: Map<number, number> }>();
    let after: string | undefined;
    for (;;) {
      const filter = [
        tenantId === undefined ? undefined : `tenantId eq ${odataString(tenantId)}`,
        after === undefined ? undefined : `id gt ${odataString(after)}`,
      ]
        .filter(Boolean)
        .join(' and ');
      const page = await this.call('read', async () => {
        const res = await this.client.search('*', {
          ...(filter ? { filter } : {}),
          select: ['id', 'tenantId', 'documentId', 'version'],
          orderBy: ['id asc'],
          top: PAGE,
        });
        const rows: Pick<AzureChunkDocument, 'id' | 'tenantId' | 'documentId' | 'version'>[] = [];
        for await (const r of res.results) {
          rows.push(r.document as Pick<AzureChunkDocument, 'id' | 'tenantId' | 'documentId' | 'version'>);
          if (rows.length >= PAGE) break;
        }
        return rows;
      });
      for (const r of page) {
        const key = `${r.tenantId}\u0000${r.documentId}`;
        let entry = counts.get(key);
        if (!entry) counts.set(key, (entry = { tenantId: r.tenantId, documentId: r.documentId, versions: new Map() }));
        entry.versions.set(r.version, (entry.versions.get(r.version) ?? 0) + 1);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]?.id;
    }
    return [...counts.values()]
      .map((e) => {
        const version = Math.max(...e.versions.keys());
        const chunks = e.versions.get(version) ?? 0;
        const total = [...e.versions.values()].reduce((a, b) => a + b, 0);
        return { tenantId: e.tenantId, documentId: e.documentId, version, chunks, olderVersionChunks: total - chunks };
      })
      .sort((a, b) => (a.tenantId === b.tenantId ? (a.documentId < b.documentId ? -1 : 1) : a.tenantId < b.tenantId ? -1 : 1));
  }

  async stats(): Promise<{ documents: number; chunks: number }> {
    const docs = await this.documentVersions();
    return { documents: docs.length, chunks: docs.reduce((s, d) => s + d.chunks + d.olderVersionChunks, 0) };
  }

  async check(): Promise<string> {
    const n = await this.call('read', () => this.client.getDocumentsCount());
    return `${this.name}: ${n} chunks`;
  }

  private async deleteByFilter(filter: string): Promise<number> {
    let removed = 0;
    for (;;) {
      const keys = await this.call('read', async () => {
        const res = await this.client.search('*', { filter, select: ['id'], top: PAGE });
        const out: string[] = [];
        for await (const r of res.results) {
          out.push((r.document as Pick<AzureChunkDocument, 'id'>).id);
          if (out.length >= PAGE) break;
        }
        return out;
      });
      if (keys.length === 0) return removed;
      await this.call('written', () => this.client.deleteDocuments('id', keys, { throwOnAnyFailure: true }));
      removed += keys.length;
      if (keys.length < PAGE) return removed;
    }
  }

  private async call<T>(what: 'read' | 'written' | 'queried', fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError) throw err;
      // RestError from the SDK's pipeline (matched by shape: its package is not a direct dependency).
      const rest = err as { statusCode?: number; response?: { headers?: { get(name: string): string | undefined } } };
      const status = typeof rest?.statusCode === 'number' ? rest.statusCode : undefined;
      const retryHeader = rest?.response?.headers?.get('retry-after');
      const retryAfterSeconds =
        retryHeader && Number.isFinite(Number(retryHeader)) ? Math.max(1, Number(retryHeader)) : undefined;
      const opts = { cause: err, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
      if (status === 400)
        return Promise.reject(new AppError('validation_failed', `search index ${this.name} refused the request`, opts));
      if (status === 429)
        return Promise.reject(
          new AppError('rate_limited', `search index ${this.name} is throttled`, {
            ...opts,
            retryAfterSeconds: retryAfterSeconds ?? 1,
          }),
        );
      return Promise.reject(
        new AppError('unavailable', `search index ${this.name} cannot be ${what}${status ? ` (${status})` : ''}`, opts),
      );
    }
  }
}

/**
 * The index definition (REST shape, as `infra/search/index.json` holds it with name and
 * dimensions filled in): fields, an HNSW cosine profile on `contentVector`, and a semantic
 * configuration over `content` with `headingPath` as title.
 */
export function indexSchema(name: string, dimensions: number): Record<string, unknown> {
  const f = (field: Record<string, unknown>): Record<string, unknown> => ({
    name: field['name'],
    type: field['type'],
    retrievable: true,
    searchable: false,
    filterable: false,
    sortable: false,
    facetable: false,
    ...field,
  });
  return {
    name,
    fields: [
      f({ name: 'id', type: 'Edm.String', key: true, filterable: true, sortable: true }),
      f({ name: 'chunkId', type: 'Edm.String', filterable: true }),
      f({ name: 'tenantId', type: 'Edm.String', filterable: true, facetable: true }),
      f({ name: 'documentId', type: 'Edm.String', filterable: true }),
      f({ name: 'name', type: 'Edm.String', searchable: true, filterable: true }),
      f({ name: 'tier', type: 'Edm.String', filterable: true, facetable: true }),
      f({ name: 'version', type: 'Edm.Int64', filterable: true }),
      f({ name: 'etag', type: 'Edm.String' }),
      f({ name: 'ordinal', type: 'Edm.Int32', sortable: true }),
      f({ name: 'headingPath', type: 'Edm.String', searchable: true, analyzer: 'en.lucene' }),
      f({ name: 'content', type: 'Edm.String', searchable: true, analyzer: 'en.lucene' }),
      f({ name: 'tokenCount', type: 'Edm.Int32' }),
      {
        name: VECTOR_FIELD,
        type: 'Collection(Edm.Single)',
        searchable: true,
        retrievable: false,
        stored: false,
        dimensions,
        vectorSearchProfile: 'hnsw-cosine',
      },
      f({ name: 'indexedAt', type: 'Edm.DateTimeOffset', filterable: true, sortable: true }),
    ],
    vectorSearch: {
      algorithms: [
        { name: 'hnsw', kind: 'hnsw', hnswParameters: { metric: 'cosine', m: 4, efConstruction: 400, efSearch: 500 } },
      ],
      profiles: [{ name: 'hnsw-cosine', algorithm: 'hnsw' }],
    },
    semantic: {
      defaultConfiguration: SEMANTIC_CONFIGURATION,
      configurations: [
        {
          name: SEMANTIC_CONFIGURATION,
          prioritizedFields: {
            titleField: { fieldName: 'headingPath' },
            prioritizedContentFields: [{ fieldName: 'content' }],
            prioritizedKeywordsFields: [{ fieldName: 'name' }],
          },
        },
      ],
    },
  };
}
