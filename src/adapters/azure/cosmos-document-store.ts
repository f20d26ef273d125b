/**
 * DocumentStore on Azure Cosmos DB (`@azure/cosmos`). It never creates databases or
 * containers: infra does (least-privilege data-plane roles). SDK errors are translated once,
 * here, into AppError.
 *
 * Queries are translated to parameterised Cosmos SQL. The partition condition is in the query
 * text (`c["<pk>"] = @pk`) as well as in the request option, so a backend that ignores the
 * option (the emulator used in tests does) still cannot return another partition's items.
 */
import type { Container, CosmosClient, JSONObject, OperationInput, SqlParameter, SqlQuerySpec } from '@azure/cosmos';
import type { ContainerConfig } from '../../config';
import { AppError, isAppError, type ErrorCode } from '../../domain/errors';
import type {
  BatchOperation,
  BatchResult,
  Condition,
  DocumentStore,
  Item,
  PartitionKey,
  PatchOperation,
  QueryOptions,
  QueryPage,
  QuerySpec,
  Stored,
  WriteOptions,
} from '../../ports/document-store';
import {
  checkBatch,
  checkItem,
  checkPatch,
  checkQuery,
  parsePath,
  partitionKeyProperty,
  queryFingerprint,
  unwrapToken,
  wrapToken,
} from '../document-spec';

export type CosmosDocumentStoreOptions = {
  /** Every container the app uses (partition keys come from here; nothing is created). */
  containers: readonly ContainerConfig[];
} & (
  | { client: CosmosClient; databaseId: string; /** Dispose the client on close(). */ ownsClient?: boolean }
  | { resolveContainer: (name: string) => Container }
);

interface ContainerInfo {
  name: string;
  pkProperty: string;
  container: Container;
}

/** Translates anything the SDK throws (or a failed status) into an AppError. */
export function translateCosmosError(err: unknown, what: string): AppError {
  if (isAppError(err)) return err;
  const e = (err ?? {}) as {
    code?: unknown;
    statusCode?: unknown;
    retryAfterInMs?: unknown;
    retryAfterInMilliseconds?: unknown;
    headers?: unknown;
    name?: unknown;
  };
  const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const byStatus: Record<number, ErrorCode> = {
    400: 'validation_failed',
    404: 'not_found',
    409: 'conflict',
    412: 'precondition_failed',
    413: 'payload_too_large',
    429: 'rate_limited',
    408: 'unavailable',
    449: 'unavailable',
    500: 'unavailable',
    502: 'unavailable',
    503: 'unavailable',
    504: 'unavailable',
  };
  if (status === 429) {
    const headers = (e.headers ?? {}) as Record<string, unknown>;
    const ms = [e.retryAfterInMs, e.retryAfterInMilliseconds, headers['x-ms-retry-after-ms']]
      .map((v) => (typeof v === 'string' ? Number(v) : v))
      .find((v): v is number => typeof v === 'number' && Number.isFinite(v));
    return new AppError('rate_limited', `${what}: Cosmos DB is throttling`, {
      cause: err,
      retryAfterSeconds: Math.max(1, Math.ceil((ms ?? 1000) / 1000)),
    });
  }
  const code = status === undefined ? undefined : byStatus[status];
  if (code) return new AppError(code, `${what}: Cosmos DB answered ${status}`, { cause: err });
  if (status === undefined) {
    // No status: the request never got an answer (DNS, socket, timeout, abort).
    return new AppError('unavailable', `${what}: Cosmos DB is unreachable`, { cause: err });
  }
  return new AppError(status >= 500 ? 'unavailable' : 'internal', `${what}: Cosmos DB answered ${status}`, { cause: err });
}

const HIDDEN = ['_rid', '_self', '_attachments'];

function clean<T extends Item>(resource: unknown): Stored<T> {
  const out = { ...(resource as Record<string, unknown>) };
  for (const k of HIDDEN) delete out[k];
  return out as Stored<T>;
}

function expr(path: string): string {
  // Segments are validated by parsePath to [A-Za-z0-9_$-] names or integers, so quoting is safe.
  return (
    'c' +
    parsePath(path)
      .map((s) => (s.kind === 'property' ? `["${s.name}"]` : s.kind === 'index' ? `[${s.index}]` : ''))
      .join('')
  );
}

/** Builds the Cosmos SQL for a structured query (exported for tests). */
export function toCosmosSql(pkProperty: string, pk: PartitionKey, spec: QuerySpec): SqlQuerySpec {
  const parameters: SqlParameter[] = [{ name: '@pk', value: pk }];
  const param = (value: string | number | boolean | null): string => {
    const name = `@p${parameters.length - 1}`;
    parameters.push({ name, value });
    return name;
  };
  const conditions = [`c["${pkProperty}"] = @pk`, ...(spec.where ?? []).map((c) => conditionSql(c, param))];
  const select = spec.select ? `VALUE {${spec.select.map((s) => `"${s}": c["${s}"]`).join(', ')}}` : '*';
  const order = spec.orderBy ? ` ORDER BY ${expr(spec.orderBy.path)} ${spec.orderBy.direction === 'desc' ? 'DESC' : 'ASC'}` : '';
  return { query: `SELECT ${select} FROM c WHERE ${conditions.join(' AND ')}${order}`, parameters };
}

function conditionSql(c: Condition, param: (v: string | number | boolean | null) => string): string {
  const e = expr(c.path);
  switch (c.op) {
    case '=':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      return `${e} ${c.op} ${param(c.value)}`;
    case 'in':
      return `${e} IN (${c.value.map((v) => param(v)).join(', ')})`;
    case 'startsWith':
      return `STARTSWITH(${e}, ${param(c.value)})`;
    case 'isDefined':
      return `IS_DEFINED(${e})`;
    case 'notDefined':
      return `NOT IS_DEFINED(${e})`;
  }
}

const ifMatch = (etag: string | undefined) =>
  etag === undefined ? {} : { accessCondition: { type: 'IfMatch', condition: etag } };

export class CosmosDocumentStore implements DocumentStore {
  private readonly containers = new Map<string, ContainerInfo>();
  private readonly dispose: (() => void) | undefined;
  private closed = false;

  constructor(options: CosmosDocumentStoreOptions) {
    const resolve =
      'resolveContainer' in options
        ? options.resolveContainer
        : (name: string) => options.client.database(options.databaseId).container(name);
    this.dispose = 'client' in options && options.ownsClient ? () => options.client.dispose() : undefined;
    for (const c of options.containers) {
      this.containers.set(c.name, { name: c.name, pkProperty: partitionKeyProperty(c.partitionKey), container: resolve(c.name) });
    }
  }

  private info(name: string): ContainerInfo {
    if (this.closed) throw new AppError('unavailable', 'the document store is closed');
    const c = this.containers.get(name);
    if (!c)
      throw new AppError('not_found', `container ${name} is not configured (known: ${[...this.containers.keys()].join(', ')})`);
    return c;
  }

  private async call<R>(what: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      throw translateCosmosError(err, what);
    }
  }

  async create<T extends Item>(container: string, item: T): Promise<Stored<T>> {
    const c = this.info(container);
    const { body, id } = checkItem(item, c.pkProperty);
    const res = await this.call(`create ${container}/${id}`, () => c.container.items.create(body));
    return clean<T>(res.resource);
  }

  async read<T extends Item = Item>(container: string, pk: PartitionKey, id: string): Promise<Stored<T> | undefined> {
    const c = this.info(container);
    try {
      const res = await c.container.item(id, pk).read();
      return res.resource === undefined || res.statusCode === 404 ? undefined : clean<T>(res.resource);
    } catch (err) {
      const e = translateCosmosError(err, `read ${container}/${id}`);
      if (e.code === 'not_found') return undefined;
      throw e;
    }
  }

  async upsert<T extends Item>(container: string, item: T, options: WriteOptions = {}): Promise<Stored<T>> {
    const c = this.info(container);
    const { body, id, pk } = checkItem(item, c.pkProperty);
    if (options.ifMatch !== undefined) {
      // An upsert guarded by an etag can only succeed on an existing item: a replace. Doing it
      // as one makes "absent" a precondition failure on every backend.
      try {
        const res = await c.container.item(id, pk).replace(body, ifMatch(options.ifMatch));
        return clean<T>(res.resource);
      } catch (err) {
        const e = translateCosmosError(err, `upsert ${container}/${id}`);
        throw e.code === 'not_found'
          ? new AppError('precondition_failed', `item ${id} in ${container} does not exist`, { cause: err })
          : e;
      }
    }
    const res = await this.call(`upsert ${container}/${id}`, () => c.container.items.upsert(body));
    return clean<T>(res.resource);
  }

  async replace<T extends Item>(container: string, item: T, options: WriteOptions = {}): Promise<Stored<T>> {
    const c = this.info(container);
    const { body, id, pk } = checkItem(item, c.pkProperty);
    const res = await this.call(`replace ${container}/${id}`, () =>
      c.container.item(id, pk).replace(body, ifMatch(options.ifMatch)),
    );
    return clean<T>(res.resource);
  }

  async patch<T extends Item = Item>(
    container: string,
    pk: PartitionKey,
    id: string,
    operations: readonly PatchOperation[],
    options: WriteOptions = {},
  ): Promise<Stored<T>> {
    const c = this.info(container);
    checkPatch(operations, c.pkProperty);
    const res = await this.call(`patch ${container}/${id}`, () =>
      c.container.item(id, pk).patch({ operations: operations.map((o) => ({ ...o })) as never }, ifMatch(options.ifMatch)),
    );
    return clean<T>(res.resource);
  }

  async delete(container: string, pk: PartitionKey, id: string, options: WriteOptions = {}): Promise<void> {
    const c = this.info(container);
    await this.call(`delete ${container}/${id}`, () => c.container.item(id, pk).delete(ifMatch(options.ifMatch)));
  }

  async query<T = Stored>(
    container: string,
    pk: PartitionKey,
    spec: QuerySpec,
    options: QueryOptions = {},
  ): Promise<QueryPage<T>> {
    const c = this.info(container);
    const { limit } = checkQuery(spec, options);
    const sql = toCosmosSql(c.pkProperty, pk, spec);
    // The SDK's token is wrapped with the query's fingerprint: a token is refused by any other
    // query, on every backend, before it reaches Cosmos.
    const fingerprint = queryFingerprint(container, pk, spec);
    let sdkToken: string | undefined;
    if (options.continuationToken !== undefined) {
      const state = unwrapToken(options.continuationToken, fingerprint);
      if (typeof state !== 'string') throw new AppError('validation_failed', 'continuation token does not belong to this query');
      sdkToken = state;
    }
    const page = await this.call(`query ${container}`, () =>
      c.container.items
        .query(sql, {
          partitionKey: pk,
          maxItemCount: limit,
          ...(sdkToken === undefined ? {} : { continuationToken: sdkToken }),
        })
        .fetchNext(),
    );
    const items = page.resources.map((r) => (spec.select ? r : clean(r)) as T);
    return page.continuationToken && page.hasMoreResults !== false
      ? { items, continuationToken: wrapToken(page.continuationToken, fingerprint) }
      : { items };
  }

  async batch(container: string, pk: PartitionKey, operations: readonly BatchOperation[]): Promise<BatchResult[]> {
    const c = this.info(container);
    checkBatch(operations);
    const inputs: OperationInput[] = operations.map((o, index) => {
      try {
        return this.toOperation(c, pk, o);
      } catch (err) {
        const e = translateCosmosError(err, `batch ${container}`);
        throw new AppError(e.code, `batch operation ${index} failed: ${e.message}`, {
          cause: e,
          extensions: { failedOperationIndex: index },
        });
      }
    });
    const res = await this.call(`batch ${container}`, () => c.container.items.batch(inputs, pk));
    const results = res.result ?? [];
    const failed = results.findIndex((r) => r.statusCode >= 400 && r.statusCode !== 424);
    if (failed >= 0 || results.length !== operations.length || (res.code ?? 200) >= 400) {
      const index = failed >= 0 ? failed : 0;
      const status = failed >= 0 ? results[failed]?.statusCode : res.code;
      const e = translateCosmosError({ code: status, headers: res.headers }, `batch ${container}`);
      throw new AppError(e.code, `batch operation ${index} failed: ${e.message}`, {
        cause: e,
        extensions: { failedOperationIndex: index },
      });
    }
    return results.map((r, i) => {
      const type = operations[i]?.type;
      return type === 'delete' ? { status: r.statusCode } : { status: r.statusCode, item: clean(r.resourceBody) };
    });
  }

  private toOperation(c: ContainerInfo, pk: PartitionKey, o: BatchOperation): OperationInput {
    const body = (item: Item): JSONObject => {
      const checked = checkItem(item, c.pkProperty);
      if (checked.pk !== pk) {
        throw new AppError('validation_failed', `item ${checked.id} has partition key ${checked.pk}, the batch is for ${pk}`);
      }
      return checked.body as JSONObject;
    };
    const guard = (etag: string | undefined) => (etag === undefined ? {} : { ifMatch: etag });
    switch (o.type) {
      case 'create':
        return { operationType: 'Create', resourceBody: body(o.item) };
      case 'upsert':
        return { operationType: 'Upsert', resourceBody: body(o.item), ...guard(o.ifMatch) };
      case 'replace':
        return { operationType: 'Replace', id: o.item.id, resourceBody: body(o.item), ...guard(o.ifMatch) };
      case 'patch':
        checkPatch(o.operations, c.pkProperty);
        return {
          operationType: 'Patch',
          id: o.id,
          resourceBody: { operations: o.operations.map((p) => ({ ...p })) } as never,
          ...guard(o.ifMatch),
        };
      case 'delete':
        return { operationType: 'Delete', id: o.id, ...guard(o.ifMatch) };
      case 'read':
        return { operationType: 'Read', id: o.id };
      default:
        throw new AppError('validation_failed', `unknown batch operation ${JSON.stringify((o as { type: unknown }).type)}`);
    }
  }

  async check(): Promise<void> {
    const first = [...this.containers.values()][0];
    if (!first) return;
    try {
      await this.info(first.name).container.read();
    } catch (err) {
      throw new AppError('unavailable', 'Cosmos DB cannot be reached', { cause: translateCosmosError(err, 'check') });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dispose?.();
  }
}
