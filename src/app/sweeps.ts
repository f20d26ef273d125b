/**
 * Index sweeps: reconcile the boundary's blobs (and the shared documents) with each served
 * region's index. Events do the work; sweeps repair what events missed:
 * - a document whose blob version the index does not hold (missing, stale, or chunks removed
 *   behind the indexer's back) is re-published with a sweep message id (so duplicate
 *   detection does not drop it) after its index state row is cleared (so it is not skipped);
 * - chunks of documents that no longer exist (no catalog row, or `deleting`) are deleted, and a
 *   live document whose blob is gone is deleted too ("out of band"), but only once a head
 *   confirms the blob absent, never for a container whose blob store is not configured or
 *   cannot be listed (unknown is not empty), and never for more than a few at once;
 * - a deletion whose blob delete failed is finished (blob deleted, delete re-published);
 * - catalog rows of finished deletions (no served index holds a chunk) are dropped;
 * - freshness per index is recorded for `GET /api/index/status`.
 * A sweep handles the documents of its tier; orphan and deletion clean-up run in every sweep.
 */
import {
  readBlobMetadata,
  SHARED_CONTAINER,
  SHARED_TENANT,
  TENANT_CONTAINER,
  type DocumentRecord,
  type Tier,
} from '../domain/documents';
import { isAppError } from '../domain/errors';
import type { BlobStore } from '../ports/blob-store';
import type { Clock } from '../ports/clock';
import type { DocumentStore, Stored } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import type { IndexedDocument, SearchIndex } from '../ports/search-index';
import { CATALOG, DOCUMENT_INDEX, type Documents } from './documents';
import { INDEX_PARTITION, indexStateId, indexStatusId, pendingDeleteId, type IndexStatusRecord } from './indexer';

export interface SweepDeps {
  documents: DocumentStore;
  blobs?: BlobStore;
  sharedBlobs?: BlobStore;
  searchIndexes: { region: string; primary: boolean; index: SearchIndex }[];
  /** Re-publishes (upserts of missing versions) and finishes deletions whose blob delete failed. */
  publisher: Pick<Documents, 'publish' | 'finishDelete'>;
  clock: Clock;
  logger: Logger;
  boundary: string;
  /**
   * The most documents of one container an index may lose to "deleted out of band" in one
   * run: `documents`, or `fraction` of those it holds when that is more. Above it none is
   * marked (see `outOfBandRefused`). Defaults to 2 documents or a tenth.
   */
  outOfBandLimit?: { documents: number; fraction: number };
}

export interface SweepReport {
  runId: string;
  tier: Tier;
  republished: number;
  orphansDeleted: number;
  deletionsFinished: number;
  /** Deletions found with their blob still there (its delete failed): blob deleted again, delete re-published. */
  deletionsResumed: number;
  /** Documents whose blob is gone but that were not marked deleted: too many at once (see `outOfBandLimit`). */
  outOfBandRefused: number;
  /** Documents left alone because their blob store is not configured, could not be listed or did not answer. */
  blobStateUnknown: number;
  /** Containers whose blob store is not configured or could not be listed in this run. */
  unknownContainers: string[];
  indexes: { name: string; documents: number; chunks: number; pending: number; maxStalenessSeconds: number }[];
}

interface BlobDoc {
  tenantId: string;
  documentId: string;
  version: number;
  tier: Tier;
  etag: string;
  contentType: string;
  container: string;
  account: string;
  lastModified: number;
}

export function createSweeps(deps: SweepDeps) {
  const store = deps.documents;

  /**
   * Every document blob of the boundary, and the containers whose listing is unknown: a store
   * that is not configured (local mode without its URL) or that failed to list lists nothing,
   * which must never read as "every blob was deleted".
   */
  async function listBlobDocs(): Promise<{ docs: BlobDoc[]; unknown: Set<string> }> {
    const out: BlobDoc[] = [];
    const unknown = new Set<string>();
    for (const [blobs, container] of [
      [deps.blobs, TENANT_CONTAINER],
      [deps.sharedBlobs, SHARED_CONTAINER],
    ] as const) {
      if (!blobs) {
        unknown.add(container);
        continue;
      }
      const listed: BlobDoc[] = [];
      try {
        for await (const b of blobs.list(container)) {
          const meta = readBlobMetadata(b.metadata);
          if (!meta || meta.documentid !== b.name) continue;
          listed.push({
            tenantId: container === SHARED_CONTAINER ? SHARED_TENANT : meta.tenantid,
            documentId: meta.documentid,
            version: Number(meta.version),
            tier: meta.tier,
            etag: b.etag,
            contentType: b.contentType ?? 'application/octet-stream',
            container,
            account: blobs.account,
            lastModified: b.lastModified?.getTime() ?? deps.clock.now(),
          });
        }
      } catch (err) {
        deps.logger.error('index sweep: blobs could not be listed; clean-up skipped for their documents', { container, err });
        unknown.add(container);
        continue; // a partial listing is as unknown as none
      }
      out.push(...listed);
    }
    return { docs: out, unknown };
  }

  /** The blob store and container holding a document of `tenantId` (shared documents have their own). */
  function storageOf(tenantId: string): { blobs: BlobStore | undefined; container: string } {
    return tenantId === SHARED_TENANT
      ? { blobs: deps.sharedBlobs, container: SHARED_CONTAINER }
      : { blobs: deps.blobs, container: TENANT_CONTAINER };
  }

  /** Whether the document's blob exists now: 'unknown' when the store cannot tell. */
  async function blobState(tenantId: string, documentId: string): Promise<'present' | 'absent' | 'unknown'> {
    const { blobs, container } = storageOf(tenantId);
    if (!blobs) return 'unknown';
    try {
      return (await blobs.head(container, documentId)) ? 'present' : 'absent';
    } catch (err) {
      deps.logger.warn('index sweep: blob state unknown; the document is left as it is', { documentId, container, err });
      return 'unknown';
    }
  }

  async function run(tier: Tier, runId: string): Promise<SweepReport> {
    const now = deps.clock.now();
    // Holdings before the listing: a document is indexed only after its blob was written, so
    // whatever an index held when it was read is in a later listing unless it was deleted. The
    // other order made a document uploaded and indexed mid-sweep look deleted out of band.
    const holdings: { target: SweepDeps['searchIndexes'][number]; held: Map<string, IndexedDocument> }[] = [];
    for (const target of deps.searchIndexes) {
      holdings.push({ target, held: new Map((await target.index.documentVersions()).map((d) => [d.documentId, d])) });
    }
    const { docs: blobs, unknown } = await listBlobDocs();
    const blobById = new Map(blobs.map((b) => [b.documentId, b]));
    const report: SweepReport = {
      runId,
      tier,
      republished: 0,
      orphansDeleted: 0,
      deletionsFinished: 0,
      deletionsResumed: 0,
      outOfBandRefused: 0,
      blobStateUnknown: 0,
      unknownContainers: [...unknown],
      indexes: [],
    };
    const heldByAnyIndex = new Set<string>();
    const toRepublish = new Map<string, BlobDoc>();

    for (const { target, held } of holdings) {
      let pending = 0;
      let maxStaleness = 0;
      for (const b of blobs) {
        const h = held.get(b.documentId);
        if (h && h.version === b.version && h.chunks > 0 && h.olderVersionChunks === 0) continue;
        const catalog = await store.read<DocumentRecord>(CATALOG, b.tenantId, b.documentId);
        if (b.tenantId !== SHARED_TENANT && (!catalog || catalog.status === 'deleting')) continue;
        if (catalog?.status === 'failed' && catalog.version === b.version) continue; // will not heal by retrying
        pending++;
        maxStaleness = Math.max(maxStaleness, Math.max(0, now - b.lastModified) / 1000);
        if (b.tier === tier) {
          // Clear this index's state row so the re-published message is not skipped as stale.
          await store.delete(CATALOG, b.tenantId, indexStateId(target.index.name, b.documentId)).catch((err: unknown) => {
            if (!isAppError(err, 'not_found')) throw err;
          });
          toRepublish.set(b.documentId, b);
        }
      }
      const heldIn = new Map<string, number>(); // container -> documents this index holds of it
      const outOfBand = new Map<string, Stored<DocumentRecord>[]>(); // container -> live rows whose blob is gone
      for (const [documentId, h] of held) {
        const { container } = storageOf(h.tenantId);
        heldIn.set(container, (heldIn.get(container) ?? 0) + 1);
        if (blobById.has(documentId)) {
          heldByAnyIndex.add(documentId);
          continue;
        }
        if (unknown.has(container)) {
          heldByAnyIndex.add(documentId);
          report.blobStateUnknown++;
          continue;
        }
        // No blob listed: deleted through the API (row `deleting`), never known (no row), or
        // deleted out of band (row still live: the document is gone, so it becomes a deletion too).
        const catalog = await store.read<DocumentRecord>(CATALOG, h.tenantId, documentId);
        const live = catalog !== undefined && catalog.status !== 'deleting';
        // A listing is only a snapshot: before chunks (and, for a live row, the catalog row)
        // go, the blob itself must be absent now. One head per candidate is cheap, as orphans
        // are rare, and it holds whatever the listing missed. A row already `deleting` is being
        // removed anyway.
        if (live || !catalog) {
          const state = await blobState(h.tenantId, documentId);
          if (state !== 'absent') {
            heldByAnyIndex.add(documentId);
            if (state === 'unknown') report.blobStateUnknown++;
            continue;
          }
        }
        if (live) {
          const rows = outOfBand.get(container) ?? [];
          rows.push(catalog);
          outOfBand.set(container, rows);
          continue;
        }
        await dropChunks(target, h.tenantId, documentId);
        report.orphansDeleted++;
      }
      // Meridian deletes blobs itself, through the API; a blob vanishing behind its back is an
      // exception. Many at once in one container is far likelier a wrong or emptied account or
      // a broken listing than a real mass deletion, and dropping catalog rows cannot be undone
      // while leaving the chunks until an operator looks costs little. So above the limit none
      // is marked: the error says why, and DELETE /api/documents/{id} still removes any of them.
      const limit = deps.outOfBandLimit ?? { documents: 2, fraction: 0.1 };
      for (const [container, rows] of outOfBand) {
        const allowed = Math.max(limit.documents, Math.floor(limit.fraction * (heldIn.get(container) ?? 0)));
        if (rows.length > allowed) {
          deps.logger.error('index sweep refused to remove documents whose blobs are gone: too many at once', {
            index: target.index.name,
            container,
            missing: rows.length,
            held: heldIn.get(container),
            allowed,
            sample: rows.slice(0, 5).map((r) => r.id),
          });
          for (const row of rows) heldByAnyIndex.add(row.id);
          report.outOfBandRefused += rows.length;
          continue;
        }
        for (const row of rows) {
          if (!(await markDeletedOutOfBand(row))) {
            heldByAnyIndex.add(row.id); // the row changed meanwhile (a new upload): not deleted
            continue;
          }
          await dropChunks(target, row.tenantId, row.id);
          report.orphansDeleted++;
        }
      }
      const stats = await target.index.stats();
      await recordStatus(target, {
        documents: stats.documents,
        chunks: stats.chunks,
        pending,
        maxStalenessSeconds: Math.round(maxStaleness),
      });
      report.indexes.push({
        name: target.index.name,
        documents: stats.documents,
        chunks: stats.chunks,
        pending,
        maxStalenessSeconds: Math.round(maxStaleness),
      });
    }

    for (const b of toRepublish.values()) {
      await deps.publisher.publish(
        {
          op: 'upsert',
          documentId: b.documentId,
          version: b.version,
          targetRegion: b.tenantId === SHARED_TENANT ? 'all' : deps.boundary,
          blob: { account: b.account, container: b.container, name: b.documentId },
          etag: b.etag,
          tier: b.tier,
          contentType: b.contentType,
        },
        runId,
      );
      report.republished++;
    }

    // Finished deletions: no served index holds the document any more.
    const pendingDeletes = await store.query<Stored<{ id: string; documentId: string; partition: string }>>(
      CATALOG,
      INDEX_PARTITION,
      {
        where: [{ path: '/kind', op: '=', value: 'pending-delete' }],
      },
    );
    for (const p of pendingDeletes.items) {
      const row = await store.read<DocumentRecord>(CATALOG, p.partition, p.documentId);
      if (row && row.status !== 'deleting') {
        await store.delete(CATALOG, INDEX_PARTITION, p.id); // re-uploaded meanwhile under the same id: keep it
        continue;
      }
      if (row && blobById.has(p.documentId)) {
        // `deleting` with its blob still there: the DELETE failed at the blob (the client got a
        // 500) and no delete message went out, so nothing else would ever finish it. (Or that
        // DELETE is still running: deleting twice and a second delete message are harmless.)
        try {
          await deps.publisher.finishDelete(row, runId);
          report.deletionsResumed++;
        } catch (err) {
          deps.logger.error('index sweep could not finish a deletion; the next sweep retries', {
            documentId: p.documentId,
            err,
          });
        }
        continue; // its chunks go with the delete message; a later sweep drops the row
      }
      if (heldByAnyIndex.has(p.documentId)) continue;
      if (unknown.has(storageOf(p.partition).container)) {
        report.blobStateUnknown++; // the blob may still be there: dropping the row would strand it
        continue;
      }
      if (row) await store.delete(CATALOG, p.partition, p.documentId, { ifMatch: row._etag }).catch(() => undefined);
      if (p.partition !== SHARED_TENANT) await store.delete(DOCUMENT_INDEX, p.documentId, p.documentId).catch(() => undefined);
      await store.delete(CATALOG, INDEX_PARTITION, p.id).catch(() => undefined);
      report.deletionsFinished++;
    }
    if (report.republished || report.orphansDeleted || report.deletionsFinished || report.deletionsResumed) {
      deps.logger.info('index sweep repaired the indexes', { ...report, indexes: undefined });
    }
    if (report.blobStateUnknown) {
      deps.logger.warn('index sweep left documents alone: their blob store is not configured or did not answer', {
        runId,
        documents: report.blobStateUnknown,
        unknownContainers: report.unknownContainers,
      });
    }
    return report;
  }

  /** Removes a document's chunks and this index's state row for it. */
  async function dropChunks(target: SweepDeps['searchIndexes'][number], tenantId: string, documentId: string): Promise<void> {
    await target.index.deleteDocument(tenantId, documentId);
    await store.delete(CATALOG, tenantId, indexStateId(target.index.name, documentId)).catch(() => undefined);
  }

  /** Marks a live row deleted out of band; false when the row changed meanwhile (left alone). */
  async function markDeletedOutOfBand(row: Stored<DocumentRecord>): Promise<boolean> {
    const now = new Date(deps.clock.now()).toISOString();
    const deleting: DocumentRecord = {
      ...row,
      status: 'deleting',
      version: row.version + 1,
      deletedAt: now,
      updatedAt: now,
      error: 'the blob was deleted outside Meridian',
    };
    try {
      await store.replace(CATALOG, deleting, { ifMatch: row._etag });
    } catch (err) {
      if (isAppError(err, 'precondition_failed') || isAppError(err, 'not_found')) return false;
      throw err;
    }
    await store.upsert(CATALOG, {
      id: pendingDeleteId(row.id),
      tenantId: INDEX_PARTITION,
      kind: 'pending-delete',
      documentId: row.id,
      partition: row.tenantId,
    });
    deps.logger.warn('blob deleted out of band: document is being removed', { documentId: row.id, tenantId: row.tenantId });
    return true;
  }

  async function recordStatus(
    target: SweepDeps['searchIndexes'][number],
    figures: Pick<IndexStatusRecord, 'documents' | 'chunks' | 'pending' | 'maxStalenessSeconds'>,
  ): Promise<void> {
    const id = indexStatusId(target.index.name);
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await store.read<IndexStatusRecord>(CATALOG, INDEX_PARTITION, id);
      const next: IndexStatusRecord = {
        id,
        tenantId: INDEX_PARTITION,
        kind: 'index-status',
        name: target.index.name,
        region: target.region,
        boundary: deps.boundary,
        deadLettered: current?.deadLettered ?? 0,
        ...figures,
        lastSweepAt: new Date(deps.clock.now()).toISOString(),
      };
      try {
        await store.upsert(CATALOG, next, current ? { ifMatch: current._etag } : {});
        return;
      } catch (err) {
        if (!isAppError(err, 'precondition_failed') && !isAppError(err, 'conflict')) throw err;
      }
    }
  }

  /** `GET /api/index/status`: the recorded freshness of every served index. */
  async function status() {
    const indexes = [];
    for (const target of deps.searchIndexes) {
      const row = await store.read<IndexStatusRecord>(CATALOG, INDEX_PARTITION, indexStatusId(target.index.name));
      const live = await target.index.stats();
      indexes.push({
        name: target.index.name,
        boundary: deps.boundary,
        region: target.region,
        documents: live.documents,
        chunks: live.chunks,
        lastSweepAt: row?.lastSweepAt ?? null,
        maxStalenessSeconds: row?.maxStalenessSeconds ?? 0,
        pending: row?.pending ?? 0,
        deadLettered: row?.deadLettered ?? 0,
      });
    }
    return { indexes };
  }

  return { run, status };
}

export type Sweeps = ReturnType<typeof createSweeps>;
