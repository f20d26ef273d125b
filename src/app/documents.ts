/**
 * Documents: upload (create or replace by name), list, get, delete, and turning blob changes
 * into `index-sync` messages. Blobs are named by the opaque document id; tenant, name and
 * owner live in blob metadata and the boundary's catalog, never in the message.
 */
import {
  blobMetadata,
  ingestionMessageId,
  nameKey,
  publicDocument,
  readBlobMetadata,
  SHARED_CONTAINER,
  SHARED_TENANT,
  TENANT_CONTAINER,
  validateDocumentName,
  type DocumentContentType,
  type DocumentRecord,
  type IngestionEvent,
  type Tier,
} from '../domain/documents';
import { AppError, isAppError } from '../domain/errors';
import { isPlatformAdmin, type Principal } from '../domain/tenancy';
import type { BlobStore } from '../ports/blob-store';
import type { Clock } from '../ports/clock';
import type { BatchOperation, DocumentStore, Stored } from '../ports/document-store';
import type { EventPublisher } from '../ports/event-publisher';
import type { Logger } from '../ports/logger';

export const CATALOG = 'documents';
export const DOCUMENT_INDEX = 'document-index';
export const INDEX_SYNC_TOPIC = 'index-sync';

export interface DocumentsDeps {
  documents: DocumentStore;
  blobs?: BlobStore;
  sharedBlobs?: BlobStore;
  events: EventPublisher;
  clock: Clock;
  logger: Logger;
  boundary: string;
  maxDocumentBytes: number;
}

/** A claim row that makes "same name → same document" atomic inside one partition. */
interface NameClaim {
  id: string;
  tenantId: string;
  kind: 'name-claim';
  documentId: string;
  [extra: string]: unknown;
}

async function claimId(key: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(key));
  return `name-${Buffer.from(digest).toString('hex').slice(0, 40)}`;
}

function newDocumentId(): string {
  return `d${globalThis.crypto.randomUUID().replace(/-/g, '')}`;
}

export interface UploadInput {
  name: string | null;
  tier: Tier;
  scope: 'tenant' | 'shared';
  contentType: DocumentContentType;
  bytes: Buffer;
}

export function createDocuments(deps: DocumentsDeps) {
  const store = deps.documents;
  const iso = () => new Date(deps.clock.now()).toISOString();

  function target(scope: 'tenant' | 'shared', principal: Principal) {
    if (scope === 'shared') {
      if (!isPlatformAdmin(principal)) {
        throw new AppError('forbidden', 'Shared documents need the platform-admin role.', {
          extensions: { requiredRoles: ['platform-admin'] },
        });
      }
    }
    return storage(scope, principal.tenantId);
  }

  function storage(scope: 'tenant' | 'shared', tenantId: string) {
    if (scope === 'shared') {
      if (!deps.sharedBlobs) throw new AppError('unavailable', 'Shared document storage is not configured.');
      return { partition: SHARED_TENANT, blobs: deps.sharedBlobs, container: SHARED_CONTAINER, targetRegion: 'all' };
    }
    if (!deps.blobs) throw new AppError('unavailable', 'Document storage is not configured.');
    return { partition: tenantId, blobs: deps.blobs, container: TENANT_CONTAINER, targetRegion: deps.boundary };
  }

  /** The tenant's document, or 404 (also for another tenant's: never 403). */
  async function find(principal: Principal, documentId: string): Promise<Stored<DocumentRecord>> {
    for (const partition of isPlatformAdmin(principal) ? [principal.tenantId, SHARED_TENANT] : [principal.tenantId]) {
      const row = await store.read<DocumentRecord>(CATALOG, partition, documentId);
      if (row && row.kind === 'document') return row;
    }
    throw new AppError('not_found', `Document ${documentId} was not found.`);
  }

  async function upload(principal: Principal, input: UploadInput) {
    const name = validateDocumentName(input.name);
    if (input.bytes.length === 0) throw new AppError('validation_failed', 'The document is empty.');
    if (input.bytes.length > deps.maxDocumentBytes) {
      throw new AppError('payload_too_large', `Documents are limited to ${deps.maxDocumentBytes} bytes.`);
    }
    const t = target(input.scope, principal);
    const key = nameKey(name);
    const claim = await claimId(`${t.partition}\n${key}`);
    for (let attempt = 0; attempt < 5; attempt++) {
      const existingClaim = await store.read<NameClaim>(CATALOG, t.partition, claim);
      const existing = existingClaim
        ? await store.read<DocumentRecord>(CATALOG, t.partition, existingClaim.documentId)
        : undefined;
      const reuse = existing && existing.status !== 'deleting';
      const now = iso();
      const record: DocumentRecord = {
        id: reuse ? existing.id : newDocumentId(),
        tenantId: t.partition,
        kind: 'document',
        name,
        nameKey: key,
        tier: input.tier,
        version: reuse ? existing.version + 1 : 1,
        etag: '',
        status: 'queued',
        chunks: reuse ? existing.chunks : 0,
        contentType: input.contentType,
        size: input.bytes.length,
        owner: principal.userId,
        scope: input.scope,
        createdAt: reuse ? existing.createdAt : now,
        updatedAt: now,
      };
      // Catalog first (in one partition, atomically with the name claim), then the blob: the
      // blob trigger publishes, and a failed blob write leaves a visible `failed` row.
      const claimRow: NameClaim = { id: claim, tenantId: t.partition, kind: 'name-claim', documentId: record.id };
      const ops: BatchOperation[] = reuse
        ? [{ type: 'replace', item: record, ifMatch: existing._etag }]
        : existingClaim
          ? [
              { type: 'replace', item: claimRow, ifMatch: existingClaim._etag },
              { type: 'create', item: record },
            ]
          : [
              { type: 'create', item: claimRow },
              { type: 'create', item: record },
            ];
      try {
        await store.batch(CATALOG, t.partition, ops);
      } catch (err) {
        if (isAppError(err, 'conflict') || isAppError(err, 'precondition_failed')) continue; // raced: retry on the winner's row
        throw err;
      }
      let etag: string;
      try {
        ({ etag } = await t.blobs.put(t.container, record.id, input.bytes, {
          contentType: input.contentType,
          metadata: blobMetadata(record),
        }));
      } catch (err) {
        await store
          .patch(CATALOG, t.partition, record.id, [
            { op: 'set', path: '/status', value: 'failed' },
            { op: 'set', path: '/error', value: 'the upload could not be stored; upload it again' },
          ])
          .catch(() => undefined);
        throw err;
      }
      await store.patch(CATALOG, t.partition, record.id, [{ op: 'set', path: '/etag', value: etag }]);
      await store.upsert(DOCUMENT_INDEX, { id: record.id, tenantId: t.partition, boundary: deps.boundary });
      return {
        documentId: record.id,
        name,
        tier: record.tier,
        boundary: deps.boundary,
        version: record.version,
        etag,
        status: 'queued' as const,
      };
    }
    throw new AppError('conflict', 'The document is being replaced concurrently; retry.');
  }

  async function list(principal: Principal, options: { limit: number; continuationToken?: string }) {
    const page = await store.query<Stored<DocumentRecord>>(
      CATALOG,
      principal.tenantId,
      { where: [{ path: '/kind', op: '=', value: 'document' }], orderBy: { path: '/nameKey', direction: 'asc' } },
      { limit: options.limit, ...(options.continuationToken ? { continuationToken: options.continuationToken } : {}) },
    );
    return {
      items: page.items.map(publicDocument),
      ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}),
    };
  }

  async function get(principal: Principal, documentId: string) {
    return publicDocument(await find(principal, documentId));
  }

  /**
   * Marks the document `deleting` (search and chat exclude it at once), removes the blob and
   * publishes the delete itself (blob triggers never fire on delete). The delete carries the
   * next version so indexers never skip it as stale.
   */
  async function remove(principal: Principal, documentId: string): Promise<void> {
    const row = await find(principal, documentId);
    target(row.tenantId === SHARED_TENANT ? 'shared' : 'tenant', principal); // 403 or 503 before anything changes
    let current = row;
    if (row.status !== 'deleting') {
      const deleting: DocumentRecord = {
        ...row,
        status: 'deleting',
        version: row.version + 1,
        deletedAt: iso(),
        updatedAt: iso(),
      };
      current = await store.replace(CATALOG, deleting, { ifMatch: row._etag });
    }
    // Sweeps drop the catalog row once no served index holds the document's chunks.
    await store.upsert(CATALOG, {
      id: `pending-delete:${documentId}`,
      tenantId: '_index',
      kind: 'pending-delete',
      documentId,
      partition: row.tenantId,
    });
    await finishDelete(current);
  }

  /**
   * The rest of a deletion once the row is `deleting` and its `pending-delete` exists: removes
   * the blob and publishes the delete. Sweeps call it again (with their run id, so the message
   * is not dropped as a duplicate) when a blob delete failed and left the blob behind.
   * @throws AppError `unavailable` when the document's blob store is not configured or fails.
   */
  async function finishDelete(row: DocumentRecord, sweepRunId?: string): Promise<void> {
    const t = storage(row.tenantId === SHARED_TENANT ? 'shared' : 'tenant', row.tenantId);
    await t.blobs.delete(t.container, row.id);
    await publish(
      {
        op: 'delete',
        documentId: row.id,
        version: row.version,
        targetRegion: t.targetRegion,
        blob: { account: t.blobs.account, container: t.container, name: row.id },
        etag: row.etag,
        tier: row.tier,
        contentType: row.contentType,
      },
      sweepRunId,
    );
  }

  async function publish(e: Omit<IngestionEvent, 'schema' | 'occurredAt'>, sweepRunId?: string): Promise<void> {
    const body: IngestionEvent = { schema: 1, ...e, occurredAt: iso() };
    await deps.events.publish(INDEX_SYNC_TOPIC, {
      messageId: ingestionMessageId(e.op, e.documentId, e.version, sweepRunId),
      body,
      applicationProperties: { targetRegion: e.targetRegion, tier: e.tier },
      contentType: 'application/json',
      subject: e.op,
    });
  }

  /**
   * A blob was created or replaced (blob trigger): publish one upsert for its current version.
   * Blobs Meridian did not write (no document metadata) are logged and skipped.
   */
  async function publishBlobChange(scope: 'tenant' | 'shared', blobName: string): Promise<'published' | 'skipped'> {
    const blobs = scope === 'shared' ? deps.sharedBlobs : deps.blobs;
    const container = scope === 'shared' ? SHARED_CONTAINER : TENANT_CONTAINER;
    if (!blobs) throw new AppError('unavailable', `No ${scope} blob store is configured.`);
    const props = await blobs.head(container, blobName);
    if (!props) return 'skipped'; // deleted meanwhile: the delete publishes itself
    const meta = readBlobMetadata(props.metadata);
    if (!meta || meta.documentid !== blobName) {
      deps.logger.warn('blob without Meridian metadata ignored', { container, blob: blobName });
      return 'skipped';
    }
    await publish({
      op: 'upsert',
      documentId: meta.documentid,
      version: Number(meta.version),
      targetRegion: scope === 'shared' ? 'all' : deps.boundary,
      blob: { account: blobs.account, container, name: blobName },
      etag: props.etag,
      tier: meta.tier,
      contentType: props.contentType ?? 'application/octet-stream',
    });
    return 'published';
  }

  return { upload, list, get, remove, finishDelete, publish, publishBlobChange };
}

export type Documents = ReturnType<typeof createDocuments>;
