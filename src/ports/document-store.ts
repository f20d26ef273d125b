/**
 * The document store: Cosmos DB's data plane in domain terms. Adapters: `CosmosDocumentStore`
 * (Azure) and `SqliteDocumentStore` (local, with a change feed). Every operation names the
 * container and is scoped to one logical partition; nothing here reaches across partitions,
 * so tenant isolation is a property of the call, not of the caller's care.
 *
 * Errors are always `AppError` (src/domain/errors.ts):
 * - `not_found`: unknown container, or the item is absent where it must exist
 * - `conflict`: create of an existing id
 * - `precondition_failed`: If-Match etag does not match the stored one (or the item is gone)
 * - `validation_failed`: malformed item, path, patch or query
 * - `payload_too_large`: item over the size limit (2 MiB, as Cosmos)
 * - `rate_limited` (with `retryAfterSeconds`), `unavailable`, `internal`: the backend
 */

/** A stored JSON document. It also carries the container's partition key property (a string). */
export interface Item {
  id: string;
  [property: string]: unknown;
}

/** System properties the store adds to everything it returns. */
export interface SystemFields {
  /** Opaque version tag; changes on every write. Pass it back as `ifMatch`. */
  _etag: string;
  /** Last write time, whole seconds since the epoch. */
  _ts: number;
}

export type Stored<T extends Item = Item> = T & SystemFields;

/** Partition key values are strings in Meridian (tenant ids, or the id itself). */
export type PartitionKey = string;

export interface WriteOptions {
  /** Write only if the stored item's `_etag` equals this; otherwise `precondition_failed`. */
  ifMatch?: string;
}

/**
 * Partial update, applied atomically, as Cosmos patch. Paths are JSON-pointer-like
 * (`/a/b`, `/list/0`, `/list/-` to append with `add`); at most 10 operations per call.
 */
export type PatchOperation =
  /** Sets a property (creating it); the parent must exist. */
  | { op: 'set'; path: string; value: unknown }
  /** Adds a number; a missing property starts from 0 (as Cosmos). */
  | { op: 'incr'; path: string; value: number }
  /** Inserts into an array at an index (`-` appends) or sets an object property. */
  | { op: 'add'; path: string; value: unknown }
  /** Removes a property or array element; a missing path is `validation_failed` (as Cosmos). */
  | { op: 'remove'; path: string };

export type ComparisonOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/**
 * One condition on a path of the item. Comparisons follow Cosmos: values of different JSON
 * types never compare (`<` of a string against a number matches nothing), and a condition on
 * an undefined path is false — except `notDefined`.
 */
export type Condition =
  | { path: string; op: ComparisonOp; value: string | number | boolean | null }
  | { path: string; op: 'in'; value: ReadonlyArray<string | number | boolean | null> }
  | { path: string; op: 'startsWith'; value: string }
  | { path: string; op: 'isDefined' | 'notDefined' };

/** A small structured query; never SQL text, so nothing a caller passes can inject. */
export interface QuerySpec {
  /** AND-ed conditions. */
  where?: readonly Condition[];
  /** Ordering by one path; items lacking the path are not guaranteed to appear (as Cosmos). */
  orderBy?: { path: string; direction: 'asc' | 'desc' };
  /**
   * Top-level property names to return (`_etag`, `_ts` allowed); absent means the whole item.
   * With `select`, items carry only those properties.
   */
  select?: readonly string[];
}

export interface QueryOptions {
  /** Page size (1..1000); default 100. A page may hold fewer items and still continue. */
  limit?: number;
  /** From a previous page of the same query; opaque. */
  continuationToken?: string;
}

export interface QueryPage<T> {
  items: T[];
  /** Present when more items may follow. Opaque; pass back unchanged with the same spec. */
  continuationToken?: string;
}

/** One operation of a transactional batch; all share the batch's partition key. */
export type BatchOperation =
  | { type: 'create'; item: Item }
  | { type: 'upsert'; item: Item; ifMatch?: string }
  | { type: 'replace'; item: Item; ifMatch?: string }
  | { type: 'patch'; id: string; operations: readonly PatchOperation[]; ifMatch?: string }
  | { type: 'delete'; id: string; ifMatch?: string }
  | { type: 'read'; id: string };

export interface BatchResult {
  /** HTTP-like status of the operation: 200 read/replace/upsert/patch, 201 create, 204 delete. */
  status: number;
  /** The item after the operation (absent for delete). */
  item?: Stored;
}

/** The largest transactional batch (as Cosmos). */
export const MAX_BATCH_OPERATIONS = 100;
/** The largest item, serialized (as Cosmos). */
export const MAX_ITEM_BYTES = 2 * 1024 * 1024;

export interface DocumentStore {
  /**
   * Creates an item; its partition key is read from the item.
   * @returns the stored item with `_etag` and `_ts`.
   * @throws AppError `conflict` if an item with this id exists in the partition;
   *   `not_found` for an unknown container; `validation_failed` for a malformed item.
   */
  create<T extends Item>(container: string, item: T): Promise<Stored<T>>;

  /**
   * Reads one item.
   * @returns the item, or `undefined` when it is absent (or expired).
   * @throws AppError `not_found` only for an unknown container.
   */
  read<T extends Item = Item>(container: string, pk: PartitionKey, id: string): Promise<Stored<T> | undefined>;

  /**
   * Creates or replaces an item.
   * @returns the stored item.
   * @throws AppError `precondition_failed` when `ifMatch` is given and the item is absent or
   *   its etag differs; `not_found` for an unknown container.
   */
  upsert<T extends Item>(container: string, item: T, options?: WriteOptions): Promise<Stored<T>>;

  /**
   * Replaces an existing item.
   * @returns the stored item.
   * @throws AppError `not_found` when the item is absent; `precondition_failed` when `ifMatch`
   *   differs from the stored etag.
   */
  replace<T extends Item>(container: string, item: T, options?: WriteOptions): Promise<Stored<T>>;

  /**
   * Applies patch operations atomically.
   * @returns the item after the patch.
   * @throws AppError `not_found` when the item is absent; `precondition_failed` on etag
   *   mismatch; `validation_failed` for a bad path, a missing parent, `incr` of a non-number,
   *   `remove` of a missing path, a patch of `id` or the partition key, or over 10 operations.
   */
  patch<T extends Item = Item>(
    container: string,
    pk: PartitionKey,
    id: string,
    operations: readonly PatchOperation[],
    options?: WriteOptions,
  ): Promise<Stored<T>>;

  /**
   * Deletes an item.
   * @throws AppError `not_found` when the item is absent; `precondition_failed` on etag mismatch.
   */
  delete(container: string, pk: PartitionKey, id: string, options?: WriteOptions): Promise<void>;

  /**
   * Queries ONE partition. Without `orderBy` the order is unspecified.
   * @returns one page; an empty page with no continuation when nothing matches.
   * @throws AppError `validation_failed` for a bad path, operator, value, limit or token;
   *   `not_found` for an unknown container.
   */
  query<T = Stored>(container: string, pk: PartitionKey, spec: QuerySpec, options?: QueryOptions): Promise<QueryPage<T>>;

  /**
   * Runs up to 100 operations in one partition as one transaction: all or nothing.
   * @returns one result per operation, in order.
   * @throws the AppError of the first failing operation (a `read` of an absent item fails
   *   with `not_found`), with `extensions.failedOperationIndex`; nothing is written then.
   *   `validation_failed` for an empty or oversized batch, or an item of another partition.
   */
  batch(container: string, pk: PartitionKey, operations: readonly BatchOperation[]): Promise<BatchResult[]>;

  /**
   * Readiness probe for /api/health.
   * @throws AppError `unavailable` when the store cannot serve requests.
   */
  check(): Promise<void>;

  /** Releases connections and timers. Further calls fail. Idempotent. */
  close(): Promise<void>;
}
