/**
 * Documents and the `index-sync` event contract (API.md "Events"). Pure rules: names, tiers,
 * content types, catalog records and message shapes.
 */
import { z } from 'zod';
import { AppError } from './errors';

export const TIERS = ['upload', 'policy', 'kb', 'training', 'archive'] as const;
export type Tier = (typeof TIERS)[number];

/** Staleness bound and sweep period per tier (API.md), in seconds. */
export const TIER_BOUNDS: Record<Tier, { boundSeconds: number; sweepSchedule: string }> = {
  upload: { boundSeconds: 120, sweepSchedule: '0 */2 * * * *' },
  policy: { boundSeconds: 300, sweepSchedule: '0 */5 * * * *' },
  kb: { boundSeconds: 900, sweepSchedule: '0 */15 * * * *' },
  training: { boundSeconds: 3600, sweepSchedule: '0 0 * * * *' },
  archive: { boundSeconds: 86400, sweepSchedule: '0 30 2 * * *' },
};

export const CONTENT_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/json', 'application/pdf'] as const;
export type DocumentContentType = (typeof CONTENT_TYPES)[number];

/** The partition of shared (platform) documents in every boundary's catalog and indexes. */
export const SHARED_TENANT = '_shared';
/** Blob containers: tenant documents in the boundary's account, shared ones in the global account. */
export const TENANT_CONTAINER = 'documents';
export const SHARED_CONTAINER = 'shared';

export const MAX_NAME_LENGTH = 255;

export function isTier(value: unknown): value is Tier {
  return typeof value === 'string' && (TIERS as readonly string[]).includes(value);
}

/** `text/markdown; charset=utf-8` → `text/markdown` when allowed, else undefined. */
export function documentContentType(header: string | null | undefined): DocumentContentType | undefined {
  const base = (header ?? '').split(';')[0]?.trim().toLowerCase();
  return (CONTENT_TYPES as readonly string[]).includes(base ?? '') ? (base as DocumentContentType) : undefined;
}

/**
 * A display name is safe when it is 1–255 characters, has no control characters (NUL
 * included), is not absolute, and has no `.`/`..` segments or backslashes. Blob names are
 * opaque ids, so a name never becomes a path; these rules keep names harmless anywhere they
 * are shown or exported.
 * @throws AppError `validation_failed` naming the rule broken.
 */
export function validateDocumentName(name: string | null | undefined): string {
  if (name === null || name === undefined || name.length === 0) throw new AppError('validation_failed', 'name is required.');
  if (name.length > MAX_NAME_LENGTH)
    throw new AppError('validation_failed', `name is longer than ${MAX_NAME_LENGTH} characters.`);
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new AppError('validation_failed', 'name contains control characters.');
  if (name !== name.trim()) throw new AppError('validation_failed', 'name starts or ends with white space.');
  if (name.includes('\\')) throw new AppError('validation_failed', 'name contains a backslash.');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('~')) {
    throw new AppError('validation_failed', 'name must not be an absolute path.');
  }
  if (name.split('/').some((segment) => segment === '.' || segment === '..' || segment === '')) {
    throw new AppError('validation_failed', 'name must not contain empty, "." or ".." path segments.');
  }
  return name;
}

/** Names compare case-insensitively and Unicode-normalised: `Guide.md` replaces `guide.md`. */
export function nameKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

export type DocumentStatus = 'queued' | 'indexed' | 'failed' | 'deleting';

/** A catalog row in the `documents` container (partition `tenantId`, or `_shared`). */
export interface DocumentRecord {
  id: string;
  tenantId: string;
  kind: 'document';
  name: string;
  nameKey: string;
  tier: Tier;
  version: number;
  /** Unquoted etag of the blob version this row describes. */
  etag: string;
  status: DocumentStatus;
  chunks: number;
  contentType: DocumentContentType;
  size: number;
  owner: string;
  scope: 'tenant' | 'shared';
  createdAt: string;
  updatedAt: string;
  indexedAt?: string;
  error?: string;
  deletedAt?: string;
  [extra: string]: unknown;
}

/** What API.md lists for a document. */
export function publicDocument(r: DocumentRecord) {
  return {
    documentId: r.id,
    name: r.name,
    tier: r.tier,
    version: r.version,
    etag: r.etag,
    status: r.status,
    chunks: r.chunks,
    ...(r.indexedAt ? { indexedAt: r.indexedAt } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

/** The `index-sync` message body (schema 1). Carries no tenant data. */
export const ingestionEventSchema = z
  .object({
    schema: z.literal(1),
    op: z.enum(['upsert', 'delete']),
    documentId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
    version: z.number().int().positive(),
    targetRegion: z.string().regex(/^[a-z][a-z0-9]*$/),
    blob: z.object({ account: z.string().min(1), container: z.string().min(1), name: z.string().min(1) }).strict(),
    etag: z.string(),
    tier: z.enum(TIERS),
    contentType: z.string(),
    occurredAt: z.string(),
  })
  .strict();
export type IngestionEvent = z.infer<typeof ingestionEventSchema>;

/** `${op}:${documentId}@${version}`, plus `:sweep:<runId>` for a sweep's re-publish. */
export function ingestionMessageId(op: IngestionEvent['op'], documentId: string, version: number, sweepRunId?: string): string {
  return `${op}:${documentId}@${version}${sweepRunId ? `:sweep:${sweepRunId}` : ''}`;
}

/** Blob metadata Meridian writes on every document blob (values ASCII; the name URI-encoded). */
export interface DocumentBlobMetadata {
  documentid: string;
  tenantid: string;
  version: string;
  tier: Tier;
  owner: string;
  name: string;
  scope: 'tenant' | 'shared';
}

export function blobMetadata(r: DocumentRecord): Record<string, string> {
  const m: DocumentBlobMetadata = {
    documentid: r.id,
    tenantid: r.tenantId,
    version: String(r.version),
    tier: r.tier,
    owner: encodeURIComponent(r.owner),
    name: encodeURIComponent(r.name),
    scope: r.scope,
  };
  return { ...m };
}

/** Reads Meridian's metadata back; undefined for a blob Meridian did not write. */
export function readBlobMetadata(meta: Record<string, string>): DocumentBlobMetadata | undefined {
  const version = Number(meta['documentid'] ? meta['version'] : NaN);
  const tier = meta['tier'];
  if (!meta['documentid'] || !meta['tenantid'] || !Number.isInteger(version) || version < 1 || !isTier(tier)) return undefined;
  return {
    documentid: meta['documentid'],
    tenantid: meta['tenantid'],
    version: String(version),
    tier,
    owner: decodeURIComponent(meta['owner'] ?? ''),
    name: decodeURIComponent(meta['name'] ?? ''),
    scope: meta['scope'] === 'shared' ? 'shared' : 'tenant',
  };
}
