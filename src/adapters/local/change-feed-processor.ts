/**
 * The local change-feed processor: what the Functions host does for a `cosmosDB` trigger,
 * over `SqliteDocumentStore.readChangeFeed`.
 *
 * State lives in a lease document (`<leasePrefix>:<container>`) in the `leases` container of
 * the same store: the continuation after the last acknowledged batch, the owner and the
 * owner's lease expiry. Delivery is at-least-once, in `_lsn` order:
 * - the lease is advanced (If-Match on its etag) only after the handler returned;
 * - a handler that throws gets the SAME batch again after a backoff, never the next one —
 *   unless `maxRetries` is set and spent: then the batch is skipped (reported as `skipped`),
 *   which is what Azure's trigger does to a batch whose function has no retry policy;
 * - a restart resumes after the last acknowledged batch;
 * - a second processor for the same lease is refused while the owner's lease is valid; the
 *   owner renews it while running, so a crashed owner's lease can be taken over once it expires.
 *
 * Latency: after a full batch the next read happens at once; after a partial batch, or when
 * woken early by a write made through the same store object, the processor first waits
 * `coalesceMs` so that the writes of that moment arrive as one batch (one handler call, one
 * lease checkpoint) instead of one batch each; when the feed is empty it sleeps `pollIntervalMs`.
 */
import { randomUUID } from 'node:crypto';
import { AppError, ensureError, isAppError } from '../../domain/errors';
import type { Clock } from '../../ports/clock';
import type { DocumentStore, Item, Stored } from '../../ports/document-store';
import type { ChangeFeedItem, ChangeFeedPage, ReadChangeFeedOptions } from './sqlite-document-store';

/**
 * Idle poll interval. With writes from another process the worst-case delivery lag is about
 * this plus one batch; 50 ms keeps p95 far under the 250 ms target and costs one indexed
 * query per container per 50 ms when idle.
 */
export const DEFAULT_POLL_INTERVAL_MS = 50;
export const DEFAULT_MAX_BATCH_SIZE = 100;
/**
 * How long a processor woken by an in-process write (or left with a partial batch) waits
 * before reading: the writes of that window share one batch, one handler invocation and one
 * lease checkpoint, for at most this much more delivery lag. Every batch costs a function
 * invocation (the batch serialized to JSON and parsed by the programming model), a feed read,
 * a lease write and the handler's own per-batch reads and writes (the audit chain head, the
 * ledger row), whatever its size; at 100 chat requests/s three feeds (usage ×2, conversations)
 * ran ~40 cycles/s each at 20 ms. 100 ms makes that ~10 and keeps delivery p95 near 110 ms,
 * under the 250 ms target (the ledger's is 1 s); Azure's own trigger waits `feedPollDelay`
 * (5 s by default) once a partition is drained.
 */
export const DEFAULT_COALESCE_MS = 100;
export const DEFAULT_LEASE_CONTAINER = 'leases';
/** A lease not renewed for this long may be taken over. Renewed every third of it. */
export const DEFAULT_LEASE_DURATION_MS = 30_000;
export const DEFAULT_RETRY = { initialDelayMs: 250, maxDelayMs: 10_000 } as const;

/** What the processor needs of a store: the port plus a change feed. */
export interface ChangeFeedSource extends DocumentStore {
  readChangeFeed(container: string, options?: ReadChangeFeedOptions): Promise<ChangeFeedPage>;
  /** A continuation after every change so far. */
  currentContinuation(container: string): string;
  /** Optional in-process wake-up after writes; returns the unsubscribe function. */
  onChange?(container: string, listener: () => void): () => void;
}

export interface ChangeFeedErrorContext {
  leaseId: string;
  /**
   * handler: the handler threw (the batch is retried); skipped: it threw and `maxRetries` was
   * spent, so the batch was passed over; read/lease: the store failed (retried); lost: another
   * owner took the lease (the processor stops).
   */
  phase: 'handler' | 'skipped' | 'read' | 'lease' | 'lost';
  /** Consecutive failures of this phase, from 1. */
  attempt: number;
}

export interface ChangeFeedProcessorOptions {
  store: ChangeFeedSource;
  /** The monitored container. */
  container: string;
  /** Where lease documents live (partition key /id). Default `leases`. */
  leaseContainer?: string;
  /** Distinguishes consumers of the same container (topology `leasePrefix`). */
  leasePrefix: string;
  /**
   * Receives each batch (1..maxBatchSize items, `_lsn` ascending) and how many times this
   * batch was retried before; throw to get it again.
   */
  handler: (batch: ChangeFeedItem[], delivery: { retryCount: number }) => Promise<void> | void;
  /** Default {@link DEFAULT_MAX_BATCH_SIZE}. */
  maxBatchSize?: number;
  /** Idle poll interval; default {@link DEFAULT_POLL_INTERVAL_MS}. */
  pollIntervalMs?: number;
  /** Wait before reading after a wake-up or a partial batch; default {@link DEFAULT_COALESCE_MS}; 0 = read at once. */
  coalesceMs?: number;
  /**
   * Give the handler a deep copy of each batch (default true), so a retried batch is identical
   * even if the handler mutated the previous one. A handler that only serializes the batch
   * (devhost's trigger) can pass false and save the copy.
   */
  copyBatch?: boolean;
  /**
   * Where a NEW lease starts: true = every change in the container, false = only changes
   * after the start (the `cosmosDBTrigger` default). An existing lease always resumes.
   */
  startFromBeginning?: boolean;
  /** Told about every failure; the processor keeps going except for `lost`. Default: stderr. */
  onError?: (err: Error, context: ChangeFeedErrorContext) => void;
  /** Lease expiry times; default the system clock. */
  clock?: Clock;
  /** This instance's name in the lease; default a random id. */
  owner?: string;
  leaseDurationMs?: number;
  /** Backoff after failures: doubles from initialDelayMs up to maxDelayMs. */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * Retries of one failed batch before it is skipped; -1 (the default) retries it for ever.
   * Store failures (read, lease) are always retried.
   */
  maxRetries?: number;
}

export interface ChangeFeedProcessor {
  readonly leaseId: string;
  readonly owner: string;
  /**
   * Settles when processing has ended: after `stop()`, or when the lease was lost to another
   * owner (reported to `onError` with phase `lost`). Never rejects.
   */
  readonly finished: Promise<void>;
  /**
   * Stops polling, waits for a running handler to finish (acknowledging its batch if it
   * succeeded) and releases the lease so another processor may start at once. Idempotent.
   */
  stop(): Promise<void>;
}

/** The lease document. `continuation` null = from the beginning of the feed. */
export interface LeaseDocument extends Item {
  id: string;
  container: string;
  leasePrefix: string;
  continuation: string | null;
  owner: string | null;
  /** Epoch ms (processor clock) until which `owner` holds the lease. */
  expiresAt: number;
}

const systemClock: Clock = { now: () => Date.now() };

export function leaseIdOf(leasePrefix: string, container: string): string {
  return `${leasePrefix}:${container}`;
}

/**
 * Acquires the lease and starts processing.
 * @returns the running processor.
 * @throws AppError `conflict` when another owner holds a valid lease; `not_found` for an
 *   unknown container or lease container; `validation_failed` for bad options.
 */
export async function startChangeFeedProcessor(options: ChangeFeedProcessorOptions): Promise<ChangeFeedProcessor> {
  const store = options.store;
  const container = options.container;
  const leaseContainer = options.leaseContainer ?? DEFAULT_LEASE_CONTAINER;
  const clock = options.clock ?? systemClock;
  const owner = options.owner ?? `processor-${randomUUID()}`;
  const leaseId = leaseIdOf(options.leasePrefix, container);
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const coalesceMs = options.coalesceMs ?? DEFAULT_COALESCE_MS;
  const copyBatch = options.copyBatch ?? true;
  const leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const initialDelayMs = options.retry?.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs;
  const maxDelayMs = options.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  const maxRetries = options.maxRetries ?? -1;
  const onError =
    options.onError ??
    ((err: Error, ctx: ChangeFeedErrorContext) => {
      console.error(`change feed ${ctx.leaseId}: ${ctx.phase} failed (attempt ${ctx.attempt}): ${err.message}`);
    });
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > 10_000) {
    throw new AppError('validation_failed', 'maxBatchSize must be a whole number from 1 to 10000');
  }
  if (!(pollIntervalMs > 0) || !(leaseDurationMs > 0)) {
    throw new AppError('validation_failed', 'pollIntervalMs and leaseDurationMs must be positive');
  }
  if (!(coalesceMs >= 0)) throw new AppError('validation_failed', 'coalesceMs must be 0 or more');
  if (!Number.isInteger(maxRetries) || maxRetries < -1) {
    throw new AppError('validation_failed', 'maxRetries must be -1 (for ever) or a whole number of retries');
  }
  // Fails fast (not_found) on an unknown monitored container.
  store.currentContinuation(container);

  let lease = await acquire();

  async function acquire(): Promise<Stored<LeaseDocument>> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await store.read<LeaseDocument>(leaseContainer, leaseId, leaseId);
      const now = clock.now();
      if (!existing) {
        const fresh: LeaseDocument = {
          id: leaseId,
          container,
          leasePrefix: options.leasePrefix,
          continuation: options.startFromBeginning ? null : store.currentContinuation(container),
          owner,
          expiresAt: now + leaseDurationMs,
        };
        try {
          return await store.create(leaseContainer, fresh);
        } catch (err) {
          if (isAppError(err, 'conflict')) continue;
          throw err;
        }
      }
      if (existing.owner !== null && existing.owner !== owner && existing.expiresAt > now) {
        throw new AppError(
          'conflict',
          `change feed lease ${leaseId} is held by ${existing.owner} until ${new Date(existing.expiresAt).toISOString()}`,
        );
      }
      try {
        return await store.replace<LeaseDocument>(
          leaseContainer,
          { ...strip(existing), owner, expiresAt: now + leaseDurationMs },
          { ifMatch: existing._etag },
        );
      } catch (err) {
        if (isAppError(err, 'precondition_failed')) continue;
        throw err;
      }
    }
    throw new AppError('conflict', `change feed lease ${leaseId} is contended`);
  }

  let stopping = false;
  let wakeIdle: (() => void) | undefined;
  let coalescing: NodeJS.Timeout | undefined;
  let wakeBackoff: (() => void) | undefined;
  const sleep = (ms: number, kind: 'idle' | 'backoff'): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (kind === 'idle') {
          clearTimeout(coalescing);
          coalescing = undefined;
          wakeIdle = undefined;
        } else wakeBackoff = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (kind === 'idle') wakeIdle = done;
      else wakeBackoff = done;
    });
  const backoff = (attempt: number): number => Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt - 1));
  /** A write woke us: read after `coalesceMs` (sooner than the idle timer), not at once. */
  const onWrite = (): void => {
    if (!wakeIdle || coalescing) return;
    if (coalesceMs === 0) return wakeIdle();
    coalescing = setTimeout(() => {
      coalescing = undefined;
      wakeIdle?.();
    }, coalesceMs);
  };
  const unsubscribe = store.onChange?.(container, onWrite);

  /** Writes the lease (continuation + renewed expiry); false when another owner took it. */
  async function writeLease(continuation: string | null): Promise<boolean> {
    try {
      lease = await store.replace<LeaseDocument>(
        leaseContainer,
        { ...strip(lease), continuation, owner, expiresAt: clock.now() + leaseDurationMs },
        { ifMatch: lease._etag },
      );
      return true;
    } catch (err) {
      if (isAppError(err, 'precondition_failed') || isAppError(err, 'not_found')) {
        const current = await store.read<LeaseDocument>(leaseContainer, leaseId, leaseId).catch(() => undefined);
        if (!current || current.owner !== owner) return false;
        // Our own lease with a new etag (cannot normally happen): adopt it and try again.
        lease = current;
        return writeLease(continuation);
      }
      throw err;
    }
  }

  async function run(): Promise<void> {
    let continuation = lease.continuation;
    let leaseDirty = false;
    let lastLeaseWrite = clock.now();
    let pending: ChangeFeedPage | undefined;
    const failures = { handler: 0, read: 0, lease: 0 };
    while (!stopping) {
      if (leaseDirty || clock.now() - lastLeaseWrite >= leaseDurationMs / 3) {
        try {
          if (!(await writeLease(continuation))) {
            onError(new AppError('conflict', `lease ${leaseId} was taken over`), { leaseId, phase: 'lost', attempt: 1 });
            return;
          }
          leaseDirty = false;
          lastLeaseWrite = clock.now();
          failures.lease = 0;
        } catch (err) {
          failures.lease++;
          onError(ensureError(err), { leaseId, phase: 'lease', attempt: failures.lease });
          await sleep(backoff(failures.lease), 'backoff');
          continue;
        }
      }
      let page = pending;
      if (!page) {
        try {
          page = await store.readChangeFeed(container, {
            ...(continuation === null ? {} : { continuation }),
            maxItems: maxBatchSize,
          });
          failures.read = 0;
        } catch (err) {
          failures.read++;
          onError(ensureError(err), { leaseId, phase: 'read', attempt: failures.read });
          await sleep(backoff(failures.read), 'backoff');
          continue;
        }
      }
      if (page.items.length === 0) {
        await sleep(pollIntervalMs, 'idle');
        continue;
      }
      try {
        // A copy each time: a retried batch is identical even if the handler mutated the last one.
        await options.handler(copyBatch ? structuredClone(page.items) : page.items, { retryCount: failures.handler });
      } catch (err) {
        failures.handler++;
        if (maxRetries < 0 || failures.handler <= maxRetries) {
          pending = page;
          onError(ensureError(err), { leaseId, phase: 'handler', attempt: failures.handler });
          await sleep(backoff(failures.handler), 'backoff');
          continue;
        }
        // Retries spent: pass over the batch, as Azure's trigger does; the caller logs it.
        onError(ensureError(err), { leaseId, phase: 'skipped', attempt: failures.handler });
      }
      pending = undefined;
      failures.handler = 0;
      continuation = page.continuation;
      leaseDirty = true;
      if (page.items.length < maxBatchSize && coalesceMs > 0) {
        // A partial batch: the feed is drained; let the next writes gather (a write ends the wait early only when stopping).
        await sleep(coalesceMs, 'idle');
      } else {
        // Let timers and I/O run between back-to-back batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (leaseDirty) {
      await writeLease(continuation).catch((err: unknown) => {
        onError(ensureError(err), { leaseId, phase: 'lease', attempt: 1 });
      });
    }
  }

  const running = run().catch((err: unknown) => {
    onError(ensureError(err), { leaseId, phase: 'lost', attempt: 1 });
  });
  let stopped: Promise<void> | undefined;

  return {
    leaseId,
    owner,
    finished: running,
    stop(): Promise<void> {
      stopped ??= (async () => {
        stopping = true;
        wakeIdle?.();
        wakeBackoff?.();
        await running;
        unsubscribe?.();
        // Release so a successor need not wait for expiry; a failure here only delays it.
        try {
          const current = await store.read<LeaseDocument>(leaseContainer, leaseId, leaseId);
          if (current && current.owner === owner) {
            await store.replace(leaseContainer, { ...strip(current), owner: null, expiresAt: 0 }, { ifMatch: current._etag });
          }
        } catch {
          // the lease simply expires
        }
      })();
      return stopped;
    },
  };
}

function strip(lease: Stored<LeaseDocument>): LeaseDocument {
  const { _etag: _e, _ts: _t, ...rest } = lease;
  return rest;
}
