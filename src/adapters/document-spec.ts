/**
 * Validation shared by the DocumentStore adapters, so both refuse the same malformed input
 * with the same error instead of one adapter passing it to its backend.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../domain/errors';
import {
  MAX_BATCH_OPERATIONS,
  MAX_ITEM_BYTES,
  type BatchOperation,
  type Condition,
  type PatchOperation,
  type QueryOptions,
  type QuerySpec,
} from '../ports/document-store';

/** A property name usable in queries: also safe to splice into Cosmos SQL and SQLite JSON paths. */
const SEGMENT = /^[A-Za-z_$][A-Za-z0-9_$-]{0,127}$/;
const INDEX = /^(0|[1-9][0-9]{0,8})$/;
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);
export const SYSTEM_PROPERTIES = ['_etag', '_ts', '_rid', '_self', '_attachments', '_lsn'] as const;

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
export const MAX_PATCH_OPERATIONS = 10;

export type PathSegment = { kind: 'property'; name: string } | { kind: 'index'; index: number } | { kind: 'append' };

/**
 * Parses `/a/b/0`. Query paths allow only properties and indexes; patch paths also `-`.
 * @throws AppError validation_failed
 */
export function parsePath(path: string, allowAppend = false): PathSegment[] {
  if (typeof path !== 'string' || !path.startsWith('/') || path.length < 2) {
    throw new AppError('validation_failed', `path must look like /a/b, got ${JSON.stringify(path)}`);
  }
  const parts = path.slice(1).split('/');
  return parts.map((part, i): PathSegment => {
    if (INDEX.test(part) && i > 0) return { kind: 'index', index: Number(part) };
    if (part === '-' && allowAppend && i === parts.length - 1 && i > 0) return { kind: 'append' };
    if (!SEGMENT.test(part) || FORBIDDEN_SEGMENTS.has(part)) {
      throw new AppError('validation_failed', `path ${JSON.stringify(path)}: segment ${JSON.stringify(part)} is not allowed`);
    }
    return { kind: 'property', name: part };
  });
}

/** Property name of a partition key path (`/tenantId` → `tenantId`). */
export function partitionKeyProperty(partitionKeyPath: string): string {
  const segs = parsePath(partitionKeyPath);
  const first = segs[0];
  if (segs.length !== 1 || first?.kind !== 'property') {
    throw new AppError('validation_failed', `partition key path ${partitionKeyPath} must be a top-level property`);
  }
  return first.name;
}

const ID_FORBIDDEN = /[/\\?#]/;

/**
 * Checks an item and returns its partition key value and serialized body (system fields removed).
 * @throws AppError validation_failed, payload_too_large
 */
export function checkItem(
  item: unknown,
  pkProperty: string,
): { id: string; pk: string; body: Record<string, unknown>; json: string } {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new AppError('validation_failed', 'an item must be a JSON object');
  }
  const record = item as Record<string, unknown>;
  const id = record['id'];
  if (typeof id !== 'string' || id.length === 0 || id.length > 255 || ID_FORBIDDEN.test(id)) {
    throw new AppError('validation_failed', 'item id must be a string of 1-255 characters without / \\ ? #');
  }
  const pk = record[pkProperty];
  if (typeof pk !== 'string' || pk.length === 0) {
    throw new AppError('validation_failed', `item ${id} lacks its partition key /${pkProperty} (a non-empty string)`);
  }
  const body: Record<string, unknown> = { ...record };
  for (const p of SYSTEM_PROPERTIES) delete body[p];
  const ttl = body['ttl'];
  if (ttl !== undefined && !(Number.isInteger(ttl) && ((ttl as number) > 0 || ttl === -1))) {
    throw new AppError('validation_failed', `item ${id}: ttl must be a positive whole number of seconds or -1`);
  }
  const json = JSON.stringify(body);
  if (Buffer.byteLength(json, 'utf8') > MAX_ITEM_BYTES) {
    throw new AppError('payload_too_large', `item ${id} is larger than ${MAX_ITEM_BYTES} bytes`);
  }
  return { id, pk, body, json };
}

function checkScalar(value: unknown, where: string): void {
  const t = typeof value;
  if (value !== null && t !== 'string' && t !== 'boolean' && !(t === 'number' && Number.isFinite(value))) {
    throw new AppError('validation_failed', `${where}: value must be a string, finite number, boolean or null`);
  }
}

/**
 * Validates a query spec and paging options.
 * @throws AppError validation_failed
 */
export function checkQuery(spec: QuerySpec, options: QueryOptions): { limit: number } {
  for (const c of spec.where ?? []) checkCondition(c);
  if (spec.orderBy) {
    parsePath(spec.orderBy.path);
    if (spec.orderBy.direction !== 'asc' && spec.orderBy.direction !== 'desc') {
      throw new AppError('validation_failed', 'orderBy.direction must be asc or desc');
    }
  }
  for (const s of spec.select ?? []) {
    if (!SEGMENT.test(s) || FORBIDDEN_SEGMENTS.has(s)) {
      throw new AppError('validation_failed', `select: ${JSON.stringify(s)} is not a top-level property name`);
    }
  }
  if (spec.select && spec.select.length === 0) throw new AppError('validation_failed', 'select must not be empty');
  const limit = options.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new AppError('validation_failed', `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
  }
  return { limit };
}

function checkCondition(c: Condition): void {
  parsePath(c.path);
  switch (c.op) {
    case '=':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      checkScalar(c.value, `condition ${c.path} ${c.op}`);
      if (c.value === null && c.op !== '=' && c.op !== '!=') {
        throw new AppError('validation_failed', `condition ${c.path} ${c.op}: null only compares with = and !=`);
      }
      return;
    case 'in':
      if (!Array.isArray(c.value) || c.value.length === 0 || c.value.length > 256) {
        throw new AppError('validation_failed', `condition ${c.path} in: value must be an array of 1-256 values`);
      }
      for (const v of c.value) checkScalar(v, `condition ${c.path} in`);
      return;
    case 'startsWith':
      if (typeof c.value !== 'string')
        throw new AppError('validation_failed', `condition ${c.path} startsWith: value must be a string`);
      return;
    case 'isDefined':
    case 'notDefined':
      return;
    default:
      throw new AppError('validation_failed', `unknown condition operator ${JSON.stringify((c as { op: unknown }).op)}`);
  }
}

/**
 * Validates patch operations (paths, values, count, no change of id or partition key).
 * @throws AppError validation_failed
 */
export function checkPatch(operations: readonly PatchOperation[], pkProperty: string): void {
  if (!Array.isArray(operations) || operations.length === 0 || operations.length > MAX_PATCH_OPERATIONS) {
    throw new AppError('validation_failed', `a patch needs 1-${MAX_PATCH_OPERATIONS} operations`);
  }
  for (const o of operations) {
    if (!['set', 'incr', 'add', 'remove'].includes(o.op)) {
      throw new AppError('validation_failed', `unknown patch operation ${JSON.stringify(o.op)}`);
    }
    const segs = parsePath(o.path, o.op === 'add');
    const first = segs[0];
    if (first?.kind === 'property' && (first.name === 'id' || first.name === pkProperty || first.name.startsWith('_'))) {
      throw new AppError('validation_failed', `patch may not change ${o.path} (id, partition key or system property)`);
    }
    if (o.op === 'incr' && (typeof o.value !== 'number' || !Number.isFinite(o.value))) {
      throw new AppError('validation_failed', `incr ${o.path}: value must be a finite number`);
    }
  }
}

/**
 * Checks the shape of a batch.
 * @throws AppError validation_failed
 */
export function checkBatch(operations: readonly BatchOperation[]): void {
  if (!Array.isArray(operations) || operations.length === 0 || operations.length > MAX_BATCH_OPERATIONS) {
    throw new AppError('validation_failed', `a batch needs 1-${MAX_BATCH_OPERATIONS} operations`);
  }
}

type Json = unknown;

/**
 * Applies Cosmos patch semantics to a (copied) body; used by stores without native patch.
 * @throws AppError validation_failed
 */
export function applyPatch(body: Record<string, unknown>, operations: readonly PatchOperation[]): Record<string, unknown> {
  const doc = structuredClone(body);
  for (const o of operations) {
    const segs = parsePath(o.path, o.op === 'add');
    const last = segs[segs.length - 1] as PathSegment;
    let parent: Json = doc;
    for (const seg of segs.slice(0, -1)) {
      parent = childOf(parent, seg);
      if (parent === undefined || parent === null || typeof parent !== 'object') {
        throw new AppError('validation_failed', `patch ${o.op} ${o.path}: the parent path does not exist`);
      }
    }
    applyOne(parent as Record<string, unknown> | unknown[], last, o);
  }
  return doc;
}

function childOf(node: Json, seg: PathSegment): Json {
  if (Array.isArray(node)) return seg.kind === 'index' ? node[seg.index] : undefined;
  if (node !== null && typeof node === 'object') {
    const key = seg.kind === 'property' ? seg.name : seg.kind === 'index' ? String(seg.index) : undefined;
    return key !== undefined && Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
  }
  return undefined;
}

function applyOne(parent: Record<string, unknown> | unknown[], seg: PathSegment, o: PatchOperation): void {
  const fail = (why: string): never => {
    throw new AppError('validation_failed', `patch ${o.op} ${o.path}: ${why}`);
  };
  if (Array.isArray(parent)) {
    const index = seg.kind === 'append' ? parent.length : seg.kind === 'index' ? seg.index : fail('an array needs an index');
    switch (o.op) {
      case 'add':
        if (index > parent.length) fail('index out of range');
        parent.splice(index, 0, o.value);
        return;
      case 'set':
        if (index > parent.length) fail('index out of range');
        parent[index] = o.value;
        return;
      case 'incr': {
        const cur = parent[index];
        if (index >= parent.length) fail('index out of range');
        if (typeof cur !== 'number') fail('the target is not a number');
        parent[index] = (cur as number) + o.value;
        return;
      }
      case 'remove':
        if (index >= parent.length) fail('index out of range');
        parent.splice(index, 1);
        return;
    }
  }
  const key = seg.kind === 'property' ? seg.name : seg.kind === 'index' ? String(seg.index) : fail('- only appends to arrays');
  const exists = Object.hasOwn(parent, key);
  switch (o.op) {
    case 'set':
    case 'add':
      parent[key] = o.value;
      return;
    case 'incr': {
      const cur = exists ? parent[key] : 0;
      if (typeof cur !== 'number') fail('the target is not a number');
      parent[key] = (cur as number) + o.value;
      return;
    }
    case 'remove':
      if (!exists) fail('the path does not exist');
      delete parent[key];
      return;
  }
}

/** Keeps only the selected top-level properties. */
export function project(item: Record<string, unknown>, select: readonly string[] | undefined): Record<string, unknown> {
  if (!select) return item;
  const out: Record<string, unknown> = {};
  for (const k of select) if (Object.hasOwn(item, k)) out[k] = item[k];
  return out;
}

/** Identifies a query in its continuation tokens, so a token is refused by any other query. */
export function queryFingerprint(container: string, pk: string, spec: QuerySpec): string {
  return createHash('sha256')
    .update(JSON.stringify([container, pk, spec]))
    .digest('base64url')
    .slice(0, 16);
}

/** Wraps a backend's paging state with the query fingerprint in one opaque token. */
export function wrapToken(state: unknown, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ s: state, f: fingerprint })).toString('base64url');
}

/**
 * Unwraps a token made by {@link wrapToken} for the same query.
 * @throws AppError validation_failed for a malformed token or one of another query.
 */
export function unwrapToken(token: string, fingerprint: string): unknown {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { s?: unknown; f?: unknown };
    if (parsed.f === fingerprint && parsed.s !== undefined) return parsed.s;
  } catch {
    // falls through to the error below
  }
  throw new AppError('validation_failed', 'continuation token does not belong to this query');
}
