/** Blob storage of one account (the boundary's, or the global tenant-free one for shared documents). */
export interface BlobStore {
  /** The account name as it appears in event references (`blob.account`). */
  readonly account: string;
  /** Readiness: resolves when the account answers. @throws when it does not. */
  check(): Promise<string | void>;
}
