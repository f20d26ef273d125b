/**
 * Writes one usage event per model call (API.md "Usage event"); the ledger merges them
 * exactly once by id, so a retried write of the same event is harmless (its create conflicts).
 *
 * A model call that has happened is paid for, so its event must not be lost when the
 * `usage` container cannot take it at that moment:
 * 1. the write is retried a few times (short back-off; the request is still waiting);
 * 2. then the event goes to the **usage outbox**, a blob container of the boundary's own
 *    storage account (`usage-outbox`: a second, independent service, inside the residency
 *    boundary), and the caller carries on — the answer is not withheld;
 * 3. the `usageOutbox` timer (functions/usage-ledger.ts) replays the outbox into `usage`
 *    every minute until each event is stored (or was already: same id), then deletes its blob;
 *    a blob that is not a valid event of this boundary is moved under `rejected/` with the reason.
 * Only when the outbox cannot take it either does the write fail; the event is then logged in
 * full at error level, the last place it can be recovered from.
 */
import type { ChatCompletion } from '../domain/chat';
import { AppError, isAppError } from '../domain/errors';
import type { UsageEvent } from '../domain/usage-ledger';
import type { BlobStore } from '../ports/blob-store';
import type { Clock } from '../ports/clock';
import type { DocumentStore } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import { USAGE_CONTAINER, usageEventSchema } from './usage-ledger';

export interface UsageContext {
  tenantId: string;
  userId: string;
  requestId: string;
  /** Server-generated invocation id (never the client's request id). */
  invocationId: string;
  source: 'chat' | 'session' | 'evaluation';
}

/** The boundary storage account's container that holds events the `usage` container refused. */
export const USAGE_OUTBOX_CONTAINER = 'usage-outbox';
/** Outbox blobs that are not valid events of this boundary are kept under this prefix. */
export const REJECTED_PREFIX = 'rejected/';
/** Back-off between attempts to store an event (3 attempts; the request waits ≤ 0.3 s more). */
export const USAGE_RETRY_DELAYS_MS = [50, 250] as const;
/**
 * How long parking an event may take, the blob SDK's retries included: a user is waiting for
 * the answer, and the SDK's own policy would keep a refused connection going ~16 s.
 */
export const OUTBOX_TIMEOUT_MS = 3000;

export interface UsageWriterDeps {
  documents: DocumentStore;
  clock: Clock;
  logger?: Logger;
  /** The boundary's blob account; without one (a local run without Azurite) there is no outbox. */
  blobs?: BlobStore;
  /** Tests: no real waiting. */
  sleep?: (ms: number) => Promise<void>;
}

/** How an event ended up: stored now, already stored (same id), or parked in the outbox. */
export type UsageOutcome = 'stored' | 'duplicate' | 'deferred';

export function usageEventOf(
  ctx: UsageContext,
  ordinal: number,
  completion: Pick<ChatCompletion, 'usage' | 'model'>,
  atMs: number,
): UsageEvent {
  return {
    id: `${ctx.invocationId}:${ordinal}`,
    tenantId: ctx.tenantId,
    userId: ctx.userId,
    requestId: ctx.requestId,
    region: completion.model.region,
    deployment: completion.model.deployment,
    source: ctx.source,
    promptTokens: completion.usage.promptTokens,
    completionTokens: completion.usage.completionTokens,
    at: new Date(atMs).toISOString(),
  };
}

export async function recordUsage(
  deps: UsageWriterDeps,
  ctx: UsageContext,
  ordinal: number,
  completion: Pick<ChatCompletion, 'usage' | 'model'>,
): Promise<UsageOutcome> {
  return storeUsageEvent(deps, usageEventOf(ctx, ordinal, completion, deps.clock.now()));
}

/** Outbox blob name of an event: its id, URL-encoded (ids hold `:`), `.json`. */
export const outboxNameOf = (eventId: string): string => `${encodeURIComponent(eventId)}.json`;

/** Errors a later attempt cannot fix: the event itself is wrong. */
const permanent = (err: unknown): boolean => isAppError(err, 'validation_failed') || isAppError(err, 'payload_too_large');

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Stores the event in `usage`, retrying, else parks it in the outbox (see the module comment).
 * @throws the store's error when the event is malformed, or when neither the store nor the
 *   outbox took it (the event is then logged in full).
 */
export async function storeUsageEvent(deps: UsageWriterDeps, event: UsageEvent): Promise<UsageOutcome> {
  const sleep = deps.sleep ?? defaultSleep;
  let failure: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      await deps.documents.create(USAGE_CONTAINER, event);
      return 'stored';
    } catch (err) {
      if (isAppError(err, 'conflict')) return 'duplicate';
      if (permanent(err)) throw err;
      failure = err;
    }
    const delay = USAGE_RETRY_DELAYS_MS[attempt];
    if (delay === undefined) break;
    await sleep(delay);
  }
  try {
    if (!deps.blobs) throw new AppError('unavailable', 'no blob account is configured for the usage outbox');
    await putOutbox(deps.blobs, event);
  } catch (outboxErr) {
    deps.logger?.error('usage event not stored and not parked: record it by hand', {
      event,
      err: failure,
      outboxErr,
    });
    throw failure;
  }
  deps.logger?.warn('usage container unavailable; usage event parked in the outbox', { eventId: event.id, err: failure });
  return 'deferred';
}

async function putOutbox(blobs: BlobStore, event: UsageEvent): Promise<void> {
  const until = Date.now() + OUTBOX_TIMEOUT_MS;
  const timeoutMs = () => Math.max(1, until - Date.now());
  const put = () =>
    blobs.put(USAGE_OUTBOX_CONTAINER, outboxNameOf(event.id), Buffer.from(JSON.stringify(event)), {
      contentType: 'application/json',
      metadata: { schema: '1' },
      timeoutMs: timeoutMs(),
    });
  try {
    await put();
  } catch (err) {
    // Azure's infra creates the container; a local account gets it on first use.
    if (!isAppError(err, 'not_found')) throw err;
    await blobs.ensureContainer(USAGE_OUTBOX_CONTAINER, { timeoutMs: timeoutMs() });
    await put();
  }
}

export interface OutboxReplayStats {
  /** Events stored in `usage` now. */
  stored: number;
  /** Events that were already there (same id): their blobs are removed. */
  duplicates: number;
  /** Blobs moved under `rejected/` (not JSON, not a usage event, another boundary's tenant). */
  rejected: number;
  /** Blobs left for the next run because the store failed again. */
  remaining: number;
}

/**
 * Replays the outbox into `usage` (the `usageOutbox` timer). Stops at the first store failure:
 * the container is still unavailable, and the next run starts over.
 * @param belongsHere whether a tenant's data may live in this boundary.
 */
export async function replayUsageOutbox(
  deps: { documents: DocumentStore; blobs: BlobStore; logger: Logger },
  belongsHere: (tenantId: string) => boolean,
): Promise<OutboxReplayStats> {
  const stats: OutboxReplayStats = { stored: 0, duplicates: 0, rejected: 0, remaining: 0 };
  const names: string[] = [];
  for await (const b of deps.blobs.list(USAGE_OUTBOX_CONTAINER)) {
    if (!b.name.startsWith(REJECTED_PREFIX)) names.push(b.name);
  }
  for (const [i, name] of names.entries()) {
    const blob = await deps.blobs.get(USAGE_OUTBOX_CONTAINER, name);
    if (!blob) continue; // another instance replayed it meanwhile
    const reason = invalidReason(blob.bytes, belongsHere);
    if (typeof reason === 'string') {
      await deps.blobs.put(USAGE_OUTBOX_CONTAINER, `${REJECTED_PREFIX}${name}`, blob.bytes, {
        contentType: blob.contentType ?? 'application/octet-stream',
        metadata: { reason: asciiMetadata(reason) },
      });
      await deps.blobs.delete(USAGE_OUTBOX_CONTAINER, name);
      deps.logger.error('usage outbox blob rejected', { blob: name, reason });
      stats.rejected++;
      continue;
    }
    try {
      await deps.documents.create(USAGE_CONTAINER, reason);
      stats.stored++;
    } catch (err) {
      if (!isAppError(err, 'conflict')) {
        stats.remaining = names.length - i;
        deps.logger.warn('usage outbox replay stopped: the usage container still fails', { err, remaining: stats.remaining });
        return stats;
      }
      stats.duplicates++;
    }
    await deps.blobs.delete(USAGE_OUTBOX_CONTAINER, name);
  }
  return stats;
}

/** The event, or why the bytes are not one this boundary may store. */
function invalidReason(bytes: Buffer, belongsHere: (tenantId: string) => boolean): UsageEvent | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const parsed = usageEventSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `not a usage event: ${issue ? `${issue.path.join('.') || '(root)'} ${issue.message}` : 'invalid'}`;
  }
  if (!belongsHere(parsed.data.tenantId)) return `tenant ${parsed.data.tenantId} does not belong to this boundary`;
  return parsed.data;
}

/** Blob metadata values are ASCII; reasons are short. */
const asciiMetadata = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 256);
