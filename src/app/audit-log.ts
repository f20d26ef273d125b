/**
 * The audit log: append-only, per tenant a gap-free sequence and a SHA-256 hash chain,
 * fed by the change feeds of the audited containers.
 *
 * Append (one tenant, up to {@link APPEND_CHUNK} changes): read the chain head, number and
 * chain the new entries, then ONE transactional batch creates the entries and replaces the
 * head with If-Match (creates it for the first entry). Two appenders racing on a tenant: one
 * batch fails (`precondition_failed`/`conflict`) and recomputes on the new head, so sequence
 * numbers never repeat and the chain never forks. An entry's id is derived from the change
 * it records (container, id, etag), so a redelivered change conflicts and is dropped: each
 * change is audited exactly once. The app never updates or deletes entries.
 */
import { AppError, isAppError } from '../domain/errors';
import {
  createChainVerifier,
  entryHash,
  GENESIS_HASH,
  type AuditEntry,
  type ChainHead,
  type HashFn,
  type VerifyResult,
} from '../domain/audit-chain';
import { describeChange, type AuditRecord } from '../domain/audit-events';
import type { Clock } from '../ports/clock';
import type { BatchOperation, DocumentStore, Item, QuerySpec, Stored } from '../ports/document-store';
import type { Logger } from '../ports/logger';

export const AUDIT_CONTAINER = 'audit';
export const HEAD_ID = 'chain-head';
/** Entries per batch: each entry is one create, plus the head replace (≤ 100 operations). */
export const APPEND_CHUNK = 90;
export const MAX_ATTEMPTS = 50;

export interface ChainHeadDocument extends Item, ChainHead {
  tenantId: string;
  type: 'audit-head';
  updatedAt: string;
}

/** A change to audit: the record plus the identity of the change (its dedupe key). */
export interface AuditChange extends AuditRecord {
  source: { container: string; id: string; etag: string };
}

export interface AppendStats {
  appended: number;
  duplicates: number;
  ignored: number;
  retries: number;
}

export interface AuditListQuery {
  from?: string;
  to?: string;
  afterSeq?: number;
  limit: number;
}

/** An entry as `GET /api/audit` lists it (API.md). */
export type AuditListItem = Pick<
  AuditEntry,
  'seq' | 'at' | 'actor' | 'action' | 'resource' | 'boundary' | 'region' | 'hash' | 'prevHash'
>;

export interface AuditLogDeps {
  documents: DocumentStore;
  clock: Clock;
  logger: Logger;
  config: { boundary: string; region: string };
  /** SHA-256, hex (src/app/hashing.ts). */
  hash: HashFn;
}

export function createAuditLog(deps: AuditLogDeps) {
  const { documents, clock, hash } = deps;
  const verifying = new Map<string, Promise<VerifyResult>>();
  const entryIdOf = (s: AuditChange['source']): string => `entry:${hash(`${s.container}\n${s.id}\n${s.etag}`).slice(0, 48)}`;

  async function appendChunk(tenantId: string, chunk: AuditChange[], stats: AppendStats): Promise<void> {
    let candidates = chunk;
    let checkExisting = false;
    for (let attempt = 1; ; attempt++) {
      if (checkExisting) {
        const seen = await Promise.all(candidates.map((c) => documents.read(AUDIT_CONTAINER, tenantId, entryIdOf(c.source))));
        const fresh = candidates.filter((_, i) => seen[i] === undefined);
        stats.duplicates += candidates.length - fresh.length;
        candidates = fresh;
        if (candidates.length === 0) return;
      }
      const head = await documents.read<ChainHeadDocument>(AUDIT_CONTAINER, tenantId, HEAD_ID);
      let seq = head?.seq ?? 0;
      let prevHash = head?.hash ?? GENESIS_HASH;
      const at = new Date(clock.now()).toISOString();
      const ops: BatchOperation[] = [];
      for (const c of candidates) {
        seq++;
        const unhashed: Omit<AuditEntry, 'hash'> = {
          id: entryIdOf(c.source),
          tenantId,
          type: 'audit-entry',
          seq,
          at,
          actor: c.actor,
          action: c.action,
          resource: c.resource,
          boundary: deps.config.boundary,
          region: c.region ?? deps.config.region,
          source: c.source,
          ...(c.detail && Object.keys(c.detail).length ? { detail: c.detail } : {}),
          prevHash,
        };
        const entry: AuditEntry = {
          ...unhashed,
          hash: entryHash(prevHash, unhashed as unknown as Record<string, unknown>, hash),
        };
        prevHash = entry.hash;
        ops.push({ type: 'create', item: entry as unknown as Item });
      }
      const nextHead: ChainHeadDocument = { id: HEAD_ID, tenantId, type: 'audit-head', seq, hash: prevHash, updatedAt: at };
      ops.push(head ? { type: 'replace', item: nextHead, ifMatch: head._etag } : { type: 'create', item: nextHead });
      try {
        await documents.batch(AUDIT_CONTAINER, tenantId, ops);
      } catch (err) {
        if (!(isAppError(err, 'conflict') || isAppError(err, 'precondition_failed')) || attempt >= MAX_ATTEMPTS) throw err;
        stats.retries++;
        checkExisting = true;
        continue;
      }
      stats.appended += candidates.length;
      return;
    }
  }

  async function append(changes: readonly AuditChange[]): Promise<AppendStats> {
    const stats: AppendStats = { appended: 0, duplicates: 0, ignored: 0, retries: 0 };
    const byTenant = new Map<string, Map<string, AuditChange>>();
    for (const c of changes) {
      let m = byTenant.get(c.tenantId);
      if (!m) byTenant.set(c.tenantId, (m = new Map()));
      const key = entryIdOf(c.source);
      if (m.has(key)) stats.duplicates++;
      else m.set(key, c);
    }
    await Promise.all(
      [...byTenant].map(async ([tenantId, m]) => {
        const list = [...m.values()];
        for (let i = 0; i < list.length; i += APPEND_CHUNK) await appendChunk(tenantId, list.slice(i, i + APPEND_CHUNK), stats);
      }),
    );
    return stats;
  }

  return {
    append,

    /**
     * Audits a change-feed batch of one container (feed order is kept within a tenant).
     * @throws the store's AppError: the trigger fails and the batch comes again (safe).
     */
    async appendChanges(container: string, items: readonly unknown[]): Promise<AppendStats> {
      const changes: AuditChange[] = [];
      let ignored = 0;
      for (const item of items) {
        if (typeof item !== 'object' || item === null) {
          ignored++;
          continue;
        }
        const doc = item as Record<string, unknown>;
        const record = describeChange(container, doc);
        const id = doc['id'];
        const etag = doc['_etag'];
        if (!record || typeof id !== 'string' || typeof etag !== 'string') {
          ignored++;
          continue;
        }
        changes.push({ ...record, source: { container, id, etag } });
      }
      const stats = await append(changes);
      stats.ignored += ignored;
      return stats;
    },

    /** One page of a tenant's entries in `seq` order. */
    async list(tenantId: string, q: AuditListQuery): Promise<{ items: AuditListItem[]; continuationToken?: string }> {
      const where: NonNullable<QuerySpec['where']>[number][] = [{ path: '/type', op: '=', value: 'audit-entry' }];
      if (q.afterSeq !== undefined) where.push({ path: '/seq', op: '>', value: q.afterSeq });
      if (q.from !== undefined) where.push({ path: '/at', op: '>=', value: q.from });
      if (q.to !== undefined) where.push({ path: '/at', op: '<', value: q.to });
      const spec: QuerySpec = { where, orderBy: { path: '/seq', direction: 'asc' } };
      // One extra item tells whether more remain, so the last page carries no token.
      const page = await documents.query<Stored<AuditEntry & Item>>(AUDIT_CONTAINER, tenantId, spec, { limit: q.limit + 1 });
      let rows = page.items;
      let more = rows.length > q.limit;
      if (!more && page.continuationToken !== undefined && rows.length < q.limit + 1) {
        // A short page that still continues (allowed by the port): ask for what is missing.
        const rest = await documents.query<Stored<AuditEntry & Item>>(AUDIT_CONTAINER, tenantId, spec, {
          limit: q.limit + 1 - rows.length,
          continuationToken: page.continuationToken,
        });
        rows = [...rows, ...rest.items];
        more = rows.length > q.limit || rest.continuationToken !== undefined;
      }
      rows = rows.slice(0, q.limit);
      const items = rows.map((e) => ({
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        action: e.action,
        resource: e.resource,
        boundary: e.boundary,
        region: e.region,
        hash: e.hash,
        prevHash: e.prevHash,
      }));
      const last = items[items.length - 1];
      return more && last ? { items, continuationToken: String(last.seq) } : { items };
    },

    /**
     * Recomputes the tenant's whole chain and compares its end with the head. Callers that ask
     * while a verification of the tenant is running share its result: every call reads the
     * whole chain, and repeating it concurrently only multiplies that cost.
     */
    verify(tenantId: string): Promise<VerifyResult> {
      const running = verifying.get(tenantId);
      if (running) return running;
      const started = verifyChain(tenantId).finally(() => verifying.delete(tenantId));
      verifying.set(tenantId, started);
      return started;
    },
  };

  async function verifyChain(tenantId: string): Promise<VerifyResult> {
    const verifier = createChainVerifier(hash);
    const spec: QuerySpec = {
      where: [{ path: '/type', op: '=', value: 'audit-entry' }],
      orderBy: { path: '/seq', direction: 'asc' },
    };
    let token: string | undefined;
    do {
      const page = await documents.query<Stored<AuditEntry & Item>>(AUDIT_CONTAINER, tenantId, spec, {
        limit: 1000,
        ...(token ? { continuationToken: token } : {}),
      });
      for (const e of page.items) {
        if (!verifier.push(e as unknown as Record<string, unknown>)) return verifier.finish(undefined);
      }
      token = page.continuationToken;
    } while (token);
    const head = await documents.read<ChainHeadDocument>(AUDIT_CONTAINER, tenantId, HEAD_ID);
    return verifier.finish(head ? { seq: head.seq, hash: head.hash } : undefined);
  }
}

export type AuditLog = ReturnType<typeof createAuditLog>;

/** Parses an `/api/audit` continuation token (the last seq of the previous page). */
export function afterSeqOfToken(token: string): number {
  if (!/^(0|[1-9][0-9]{0,14})$/.test(token)) throw new AppError('validation_failed', 'continuationToken is not valid.');
  return Number(token);
}
