/** One blob account: the boundary's (tenant documents) or the global tenant-free one (shared documents). */
export interface BlobProperties {
  name: string;
  /** Unquoted etag. */
  etag: string;
  contentType: string | undefined;
  size: number;
  lastModified: Date | undefined;
  metadata: Record<string, string>;
}

export interface BlobContent extends BlobProperties {
  bytes: Buffer;
}

export interface BlobStore {
  /** The account name as it appears in event references (`blob.account`). */
  readonly account: string;
  /** Readiness: resolves when the account answers. @throws when it does not. */
  check(): Promise<string | void>;
  /**
   * Creates or replaces a blob. Metadata keys must be valid C# identifiers and values ASCII.
   * `timeoutMs` bounds the whole call, the adapter's own retries included (a caller that a
   * user is waiting on); without it the adapter's retry policy decides how long it tries.
   * @returns the new version's unquoted etag.
   * @throws AppError `unavailable` when the account does not answer (in time).
   */
  put(
    container: string,
    name: string,
    bytes: Buffer,
    options: { contentType: string; metadata: Record<string, string>; timeoutMs?: number },
  ): Promise<{ etag: string }>;
  /** The blob, or undefined when absent (or, with `ifMatch`, when that version is gone). */
  get(container: string, name: string, options?: { ifMatch?: string }): Promise<BlobContent | undefined>;
  /** Properties and metadata without the content, or undefined when absent. */
  head(container: string, name: string): Promise<BlobProperties | undefined>;
  /** Deletes the blob; resolves false when it was already absent. */
  delete(container: string, name: string): Promise<boolean>;
  /** Every blob in the container, with metadata (for sweeps). */
  list(container: string): AsyncIterable<BlobProperties>;
  /** Local mode only: creates the container when missing (infra creates them in Azure); `timeoutMs` as for put. */
  ensureContainer(container: string, options?: { timeoutMs?: number }): Promise<void>;
}
