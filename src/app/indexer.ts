/**
 * Regional indexing: one indexer per search index, fed by its `meridian-<region>-indexer`
 * subscription. Out-of-order and duplicate deliveries are harmless: each index keeps a state
 * row per document (`idx:<index>:<documentId>`, the version it holds) and skips messages that
 * are not newer. The state row is written last, after the catalog and the tenant's
 * `indexVersion`: it means "this version is done", so a delivery that failed anywhere before
 * it is redelivered and finishes the job instead of being skipped. Failures that will not heal
 * (unsupported or corrupt content) mark the document `failed` and complete; transient ones
 * throw so Service Bus retries and finally dead-letters, and the dead-letter handler marks the
 * document `failed` with the reason. A message that is not an index-sync message at all is
 * recorded whole with the reason (a poison row) and completed: see `rejectPoison`.
 */
import { chunkDocument, embeddingText, type Chunk, type TokenCounter } from '../domain/chunking';
import {
  ingestionEventSchema,
  readBlobMetadata,
  SHARED_CONTAINER,
  SHARED_TENANT,
  type DocumentRecord,
  type IngestionEvent,
} from '../domain/documents';
import { AppError, isAppError } from '../domain/errors';
import type { BlobStore } from '../ports/blob-store';
import type { Clock } from '../ports/clock';
import type { DocumentStore } from '../ports/document-store';
import type { Embedder } from '../ports/embedder';
import type { Logger } from '../ports/logger';
import type { IndexedChunk, SearchIndex } from '../ports/search-index';
import type { TextExtractor } from '../ports/text-extractor';
import { CATALOG, DOCUMENT_INDEX } from './documents';
import { sha256Hex } from './hashing';

/** The version and chunk count one index holds for one document. */
export interface IndexState {
  id: string;
  tenantId: string;
  kind: 'index-state';
  index: string;
  region: string;
  documentId: string;
  version: number;
  chunks: number;
  op: 'upsert' | 'delete';
  indexedAt: string;
  [extra: string]: unknown;
}

/** The per-tenant (or `_shared`) counter the chat cache keys on. */
export const INDEX_VERSION_ID = 'index-version';

export const indexStateId = (index: string, documentId: string) => `idx:${index}:${documentId}`;

/** Tenant-free bookkeeping of the boundary's indexes lives in this catalog partition. */
export const INDEX_PARTITION = '_index';
export const indexStatusId = (index: string) => `status:${index}`;
export const pendingDeleteId = (documentId: string) => `pending-delete:${documentId}`;

/** Freshness of one index, written by sweeps (and the dead-letter handler). */
export interface IndexStatusRecord {
  id: string;
  tenantId: typeof INDEX_PARTITION;
  kind: 'index-status';
  name: string;
  region: string;
  boundary: string;
  documents: number;
  chunks: number;
  pending: number;
  deadLettered: number;
  maxStalenessSeconds: number;
  lastSweepAt: string | null;
  [extra: string]: unknown;
}

/** An empty status row for an index (sweeps fill in the figures); an existing row is kept. */
async function ensureIndexStatus(
  store: DocumentStore,
  target: { name: string; region: string; boundary: string },
): Promise<void> {
  const row: IndexStatusRecord = {
    id: indexStatusId(target.name),
    tenantId: INDEX_PARTITION,
    kind: 'index-status',
    name: target.name,
    region: target.region,
    boundary: target.boundary,
    documents: 0,
    chunks: 0,
    pending: 0,
    deadLettered: 0,
    maxStalenessSeconds: 0,
    lastSweepAt: null,
  };
  try {
    await store.create(CATALOG, row);
  } catch (err) {
    if (!isAppError(err, 'conflict')) throw err;
  }
}

/** Why and how a poison message reached its index. */
export interface PoisonEntry {
  /** `rejected`: failed validation on delivery; `dead-lettered`: consumed from the dead-letter queue. */
  disposition: 'rejected' | 'dead-lettered';
  reason: string;
  messageId: string | null;
  deliveryCount: number | null;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  recordedAt: string;
}

/**
 * A message an index could not use, kept with the reason: a malformed one the indexer rejected
 * (completed, so the bus no longer holds it) or one taken from the dead-letter queue. Rows stay
 * until an operator deletes them; each one counts once in the index's `deadLettered`.
 */
export interface PoisonMessageRecord extends PoisonEntry {
  id: string;
  tenantId: typeof INDEX_PARTITION;
  kind: 'poison-message';
  index: string;
  region: string;
  boundary: string;
  /** The body as delivered: parsed JSON, text, or base64 of bytes (see `bodyEncoding`). */
  body: unknown;
  bodyEncoding: 'json' | 'text' | 'base64';
  /** UTF-8 size of the body as stored (before any truncation). */
  bodyBytes: number;
  /** Only past MAX_POISON_BODY_BYTES (more than a Standard-tier message can hold): `body` is a text prefix. */
  bodyTruncated: boolean;
  [extra: string]: unknown;
}

/**
 * Bodies are kept whole up to this size: every message a Standard-tier namespace accepts
 * (256 KB) fits, and the row stays far below the store's 2 MiB item limit.
 */
export const MAX_POISON_BODY_BYTES = 512 * 1024;

/** What the trigger knows about a delivery besides its body. */
export interface DeliveryInfo {
  messageId?: string;
  deliveryCount?: number;
}

type StoredBody = Pick<PoisonMessageRecord, 'body' | 'bodyEncoding' | 'bodyBytes' | 'bodyTruncated'>;

/** The stored form of a delivered body, and its full text (what identifies the message). */
function storedBody(body: unknown): { stored: StoredBody; text: string } {
  let encoding: PoisonMessageRecord['bodyEncoding'];
  let text: string;
  if (body instanceof Uint8Array) {
    encoding = 'base64';
    text = Buffer.from(body).toString('base64');
  } else if (typeof body === 'string') {
    encoding = 'text';
    text = body;
  } else {
    encoding = 'json';
    text = JSON.stringify(body ?? null) ?? 'null';
  }
  const bytes = new TextEncoder().encode(text).length;
  if (bytes <= MAX_POISON_BODY_BYTES) {
    const kept = encoding === 'json' ? (JSON.parse(text) as unknown) : text;
    return { stored: { body: kept, bodyEncoding: encoding, bodyBytes: bytes, bodyTruncated: false }, text };
  }
  // A prefix of MAX_POISON_BODY_BYTES / 4 characters is at most MAX_POISON_BODY_BYTES in UTF-8.
  const prefix = text.slice(0, MAX_POISON_BODY_BYTES / 4);
  return { stored: { body: prefix, bodyEncoding: 'text', bodyBytes: bytes, bodyTruncated: true }, text };
}

export const poisonMessageRowId = (index: string, key: string) => `poison:${index}:${key}`;

/**
 * Records a poison message in the `_index` partition and counts it in the index's
 * `deadLettered`, in one transactional batch, once per message: a redelivery (same message id
 * and body) finds its row and counts nothing. Two different messages that reuse a message id
 * get two rows.
 * @returns false when the message was already recorded.
 * @throws the store's AppError (transient ones: the caller throws, so the bus keeps the message).
 */
export async function recordPoisonMessage(
  store: DocumentStore,
  target: { name: string; region: string; boundary: string },
  entry: PoisonEntry,
  body: unknown,
): Promise<boolean> {
  const { stored, text } = storedBody(body);
  const row: PoisonMessageRecord = {
    ...entry,
    ...stored,
    id: poisonMessageRowId(target.name, sha256Hex(`${entry.messageId ?? ''}\n${text}`)),
    tenantId: INDEX_PARTITION,
    kind: 'poison-message',
    index: target.name,
    region: target.region,
    boundary: target.boundary,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await store.batch(CATALOG, INDEX_PARTITION, [
        { type: 'create', item: row },
        { type: 'patch', id: indexStatusId(target.name), operations: [{ op: 'incr', path: '/deadLettered', value: 1 }] },
      ]);
      return true;
    } catch (err) {
      const failed = isAppError(err) ? err.extensions['failedOperationIndex'] : undefined;
      if (isAppError(err, 'conflict') && failed === 0) return false;
      if (!isAppError(err, 'not_found') || failed !== 1) throw err;
    }
    await ensureIndexStatus(store, target);
  }
  throw new AppError('unavailable', `could not record a poison message for ${target.name}`);
}

export interface IndexerDeps {
  documents: DocumentStore;
  blobs?: BlobStore;
  sharedBlobs?: BlobStore;
  extractor: TextExtractor;
  embedder: Embedder;
  countTokens: TokenCounter;
  clock: Clock;
  logger: Logger;
  boundary: string;
}

export type IndexOutcome =
  | { result: 'indexed'; chunks: number }
  | { result: 'deleted'; chunks: number }
  | { result: 'skipped'; reason: string }
  | { result: 'failed'; reason: string }
  /** Not an index-sync message: recorded as a poison row with the reason; complete it. */
  | { result: 'rejected'; reason: string };

/** Errors that retrying will not fix. */
function isPermanent(err: unknown): boolean {
  return (
    isAppError(err, 'unsupported_media_type') || isAppError(err, 'validation_failed') || isAppError(err, 'payload_too_large')
  );
}

export function createIndexer(deps: IndexerDeps, target: { index: SearchIndex; region: string; primary: boolean }) {
  const store = deps.documents;
  const iso = () => new Date(deps.clock.now()).toISOString();
  const log = deps.logger.child({ index: target.index.name, region: target.region });

  /**
   * Validates a message body at the edge.
   * @throws AppError validation_failed (`handle` turns it into a poison row and completes).
   */
  function parse(body: unknown): IngestionEvent {
    const parsed = ingestionEventSchema.safeParse(body);
    if (!parsed.success) {
      throw new AppError(
        'validation_failed',
        `not an index-sync message: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    if (parsed.data.blob.name !== parsed.data.documentId) {
      throw new AppError('validation_failed', 'blob.name must be the document id (blob names are opaque ids)');
    }
    return parsed.data;
  }

  async function tenantOf(e: IngestionEvent): Promise<string | undefined> {
    if (e.blob.container === SHARED_CONTAINER) return SHARED_TENANT;
    const row = await store.read<{ id: string; tenantId: string }>(DOCUMENT_INDEX, e.documentId, e.documentId);
    return row?.tenantId;
  }

  async function bumpIndexVersion(tenantId: string): Promise<void> {
    try {
      await store.patch(CATALOG, tenantId, INDEX_VERSION_ID, [{ op: 'incr', path: '/value', value: 1 }]);
    } catch (err) {
      if (!isAppError(err, 'not_found')) throw err;
      try {
        await store.create(CATALOG, { id: INDEX_VERSION_ID, tenantId, kind: 'index-version', value: 1 });
      } catch (again) {
        if (!isAppError(again, 'conflict')) throw again;
        await store.patch(CATALOG, tenantId, INDEX_VERSION_ID, [{ op: 'incr', path: '/value', value: 1 }]);
      }
    }
  }

  /**
   * Records what the index holds. Called last, once the catalog and `indexVersion` are done, so
   * the row means "this version is finished" and only then makes redeliveries skip. It never
   * moves back: a message that finishes after a newer one leaves the newer row.
   * @returns the newer state that was kept, or undefined when this one was written.
   */
  async function saveState(tenantId: string, e: IngestionEvent, chunks: number): Promise<IndexState | undefined> {
    const state: IndexState = {
      id: indexStateId(target.index.name, e.documentId),
      tenantId,
      kind: 'index-state',
      index: target.index.name,
      region: target.region,
      documentId: e.documentId,
      version: e.version,
      chunks,
      op: e.op,
      indexedAt: iso(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await store.read<IndexState>(CATALOG, tenantId, state.id);
      if (current && current.version > e.version) return current;
      try {
        if (current) await store.upsert(CATALOG, state, { ifMatch: current._etag });
        else await store.create(CATALOG, state);
        return undefined;
      } catch (err) {
        if (!isAppError(err, 'precondition_failed') && !isAppError(err, 'conflict')) throw err;
      }
    }
    throw new AppError('unavailable', `index state of ${e.documentId} keeps changing; retry`);
  }

  /**
   * Updates the catalog row (primary index only: `indexed` means indexed in the serving
   * region). Only for the row's own version, or with `orOlder` for any row not newer than the
   * message (a dead-lettered message reports on the document unless a newer upload followed).
   */
  async function updateCatalog(
    tenantId: string,
    e: IngestionEvent,
    patch: Partial<DocumentRecord>,
    orOlder = false,
  ): Promise<void> {
    if (!target.primary) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await store.read<DocumentRecord>(CATALOG, tenantId, e.documentId);
      const applies = row && (orOlder ? row.version <= e.version : row.version === e.version);
      if (!row || !applies || row.status === 'deleting') return; // a newer change owns the row
      const { error: _dropped, ...rest } = row;
      const next: DocumentRecord = {
        ...(patch.status === 'failed' ? row : (rest as DocumentRecord)),
        ...patch,
        updatedAt: iso(),
      };
      try {
        await store.replace(CATALOG, next, { ifMatch: row._etag });
        return;
      } catch (err) {
        if (!isAppError(err, 'precondition_failed')) throw err;
      }
    }
  }

  /** Each boundary's indexers keep their own `_shared` catalog rows (from the blob's metadata). */
  async function ensureSharedRow(
    e: IngestionEvent,
    meta: NonNullable<ReturnType<typeof readBlobMetadata>>,
    size: number,
    contentType: string,
  ) {
    const existing = await store.read<DocumentRecord>(CATALOG, SHARED_TENANT, e.documentId);
    if (existing && existing.version >= e.version) return;
    const now = iso();
    const row: DocumentRecord = {
      id: e.documentId,
      tenantId: SHARED_TENANT,
      kind: 'document',
      name: meta.name,
      nameKey: meta.name.toLowerCase(),
      tier: e.tier,
      version: e.version,
      etag: e.etag,
      status: 'queued',
      chunks: existing?.chunks ?? 0,
      contentType: contentType as DocumentRecord['contentType'],
      size,
      owner: meta.owner,
      scope: 'shared',
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    await store.upsert(CATALOG, row, existing ? { ifMatch: existing._etag } : {});
  }

  /**
   * Handles one delivery. Every write is idempotent and the state row comes last, so a delivery
   * that throws part-way is finished by its redelivery.
   * @throws on transient failures (the trigger abandons; Service Bus redelivers).
   */
  async function handle(body: unknown, delivery: DeliveryInfo = {}): Promise<IndexOutcome> {
    let e: IngestionEvent;
    try {
      e = parse(body);
    } catch (err) {
      if (!isAppError(err, 'validation_failed')) throw err;
      return rejectPoison(body, err.message, delivery);
    }
    const tenantId = await tenantOf(e);
    if (!tenantId) return { result: 'skipped', reason: 'unknown document (no document-index row)' };
    const state = await store.read<IndexState>(CATALOG, tenantId, indexStateId(target.index.name, e.documentId));
    if (state && state.version >= e.version) {
      return { result: 'skipped', reason: `index holds version ${state.version} ≥ ${e.version}` };
    }

    if (e.op === 'delete') {
      const removed = await target.index.deleteDocument(tenantId, e.documentId);
      await bumpIndexVersion(tenantId);
      await saveState(tenantId, e, 0);
      log.info('document removed from index', { documentId: e.documentId, version: e.version, chunks: removed });
      return { result: 'deleted', chunks: removed };
    }

    const blobs = e.blob.container === SHARED_CONTAINER ? deps.sharedBlobs : deps.blobs;
    if (!blobs) throw new AppError('unavailable', `no blob store for container ${e.blob.container}`);
    const blob = await blobs.get(e.blob.container, e.blob.name, { ifMatch: e.etag });
    if (!blob) return { result: 'skipped', reason: 'the blob changed or was deleted since (a newer message follows)' };
    const meta = readBlobMetadata(blob.metadata);
    if (!meta || meta.documentid !== e.documentId || Number(meta.version) !== e.version) {
      return { result: 'skipped', reason: 'blob metadata does not match the message' };
    }
    if (tenantId === SHARED_TENANT) await ensureSharedRow(e, meta, blob.size, blob.contentType ?? e.contentType);

    let chunks;
    try {
      const extracted = await deps.extractor.extract(blob.bytes, blob.contentType ?? e.contentType);
      chunks = chunkDocument({ documentId: e.documentId, version: e.version, text: extracted.text }, deps.countTokens, {
        format: extracted.format,
      });
      if (chunks.length === 0) throw new AppError('validation_failed', 'the document has no text to index');
    } catch (err) {
      if (!isPermanent(err)) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      await updateCatalog(tenantId, e, { status: 'failed', error: reason });
      await saveState(tenantId, e, 0);
      log.warn('document cannot be indexed', { documentId: e.documentId, version: e.version, reason });
      return { result: 'failed', reason };
    }

    const vectors = await deps.embedder.embed(chunks.map(embeddingText));
    const doc = { tenantId, documentName: meta.name, tier: e.tier, etag: e.etag };
    await target.index.upsertChunks(chunks.map((c, i) => toIndexedChunk(c, doc, vectors[i] as Float32Array)));
    await target.index.deleteOlderVersions(tenantId, e.documentId, e.version);
    await updateCatalog(tenantId, e, { status: 'indexed', chunks: chunks.length, indexedAt: iso() });
    await bumpIndexVersion(tenantId);
    const newer = await saveState(tenantId, e, chunks.length);
    if (newer) {
      // A newer message finished while this one ran (its blob was read before the upload), so
      // the chunks just written are stale: take them out again rather than wait for a sweep.
      if (newer.op === 'delete') await target.index.deleteDocument(tenantId, e.documentId);
      else if (newer.chunks > 0) await target.index.deleteOlderVersions(tenantId, e.documentId, newer.version);
      return { result: 'skipped', reason: `index holds version ${newer.version} > ${e.version} (finished meanwhile)` };
    }
    return { result: 'indexed', chunks: chunks.length };
  }

  /**
   * A message that can never be indexed (not an index-sync message, or one breaking its rules).
   * The Functions Service Bus trigger only completes (handler returns) or abandons (handler
   * throws); it cannot dead-letter with a reason. Abandoning would redeliver it until
   * maxDeliveryCount and dead-letter it as `MaxDeliveryCountExceeded`, the reason lost. So the
   * raw body and the validation reason are stored as a poison row (counted in `deadLettered`)
   * and only then is the message completed. If that write fails the error propagates: the
   * message is abandoned, and if it ends up in the dead-letter queue, `handleDeadLetter`
   * records it there. Its catalog row is left alone: an invalid message is no evidence about
   * the document it names (a sweep re-publishes a document whose message was lost).
   */
  async function rejectPoison(body: unknown, reason: string, delivery: DeliveryInfo): Promise<IndexOutcome> {
    await recordPoisonMessage(
      store,
      { name: target.index.name, region: target.region, boundary: deps.boundary },
      {
        disposition: 'rejected',
        reason,
        messageId: delivery.messageId ?? null,
        deliveryCount: delivery.deliveryCount ?? null,
        recordedAt: iso(),
      },
      body,
    );
    log.error('index-sync message rejected', { messageId: delivery.messageId, reason });
    return { result: 'rejected', reason };
  }

  /**
   * A message the subscription dead-lettered: record it (counted once in `deadLettered`) and
   * mark its document failed with the reason.
   */
  async function handleDeadLetter(
    body: unknown,
    reason: string,
    description?: string,
    delivery: DeliveryInfo = {},
  ): Promise<void> {
    let e: IngestionEvent | undefined;
    let invalid: string | undefined;
    try {
      e = parse(body);
    } catch (err) {
      if (!isAppError(err, 'validation_failed')) throw err;
      invalid = err.message;
    }
    await recordPoisonMessage(
      store,
      { name: target.index.name, region: target.region, boundary: deps.boundary },
      {
        disposition: 'dead-lettered',
        reason: invalid ?? reason,
        messageId: delivery.messageId ?? null,
        deliveryCount: delivery.deliveryCount ?? null,
        deadLetterReason: reason,
        ...(description === undefined ? {} : { deadLetterErrorDescription: description }),
        recordedAt: iso(),
      },
      body,
    );
    if (!e) {
      log.error('dead-lettered message is not an index-sync message', { reason, description, invalid });
      return;
    }
    const tenantId = await tenantOf(e);
    if (!tenantId) return;
    const why = `dead-lettered: ${reason}${description ? ` (${description})` : ''}`;
    await updateCatalog(tenantId, e, { status: 'failed', error: why }, true);
    log.error('index-sync message dead-lettered', { documentId: e.documentId, version: e.version, reason, description });
  }

  return { handle, handleDeadLetter, parse };
}

export type Indexer = ReturnType<typeof createIndexer>;

/** A chunk as the search index stores it: the chunk, its document's identity, its vector. */
export function toIndexedChunk(
  c: Chunk,
  doc: { tenantId: string; documentName: string; tier: IndexedChunk['tier']; etag: string },
  vector: Float32Array,
): IndexedChunk {
  return {
    id: c.id,
    tenantId: doc.tenantId,
    documentId: c.documentId,
    documentName: doc.documentName,
    version: c.version,
    tier: doc.tier,
    etag: doc.etag,
    ordinal: c.ordinal,
    headingPath: c.headingPath,
    content: c.content,
    tokenCount: c.tokenCount,
    vector,
  };
}
