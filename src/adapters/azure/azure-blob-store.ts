import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import type { BlobStore } from '../../ports/blob-store';

/**
 * Blob storage over @azure/storage-blob: Azure with a managed identity, or Azurite locally
 * with its account key (the same adapter in both modes).
 */
export class AzureBlobStore implements BlobStore {
  readonly account: string;
  readonly client: BlobServiceClient;

  constructor(client: BlobServiceClient, account: string) {
    this.client = client;
    this.account = account;
  }

  /** Azure: `https://<account>.blob.core.windows.net` with a token credential. */
  static withCredential(url: string, credential: TokenCredential): AzureBlobStore {
    const account = new URL(url).hostname.split('.')[0] ?? 'unknown';
    return new AzureBlobStore(new BlobServiceClient(url, credential), account);
  }

  /** Azurite: `http://127.0.0.1:<port>/<account>` with that account's key. */
  static withAccountKey(url: string, account: string, key: string): AzureBlobStore {
    return new AzureBlobStore(new BlobServiceClient(url, new StorageSharedKeyCredential(account, key)), account);
  }

  async check(): Promise<string> {
    await this.client.getProperties();
    return this.account;
  }
}
