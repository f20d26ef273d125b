import { BlobServiceClient, RestError, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { AppError } from '../../domain/errors';
import type { BlobContent, BlobProperties, BlobStore } from '../../ports/blob-store';

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '').replace(/^W\//, '');

function translate(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new AppError('unavailable', `${what}: storage did not answer in time`, { cause: err });
  }
  if (err instanceof RestError) {
    if (err.statusCode === 404) return new AppError('not_found', `${what}: not found`, { cause: err });
    if (err.statusCode === 409) return new AppError('conflict', `${what}: conflict`, { cause: err });
    if (err.statusCode === 412) return new AppError('precondition_failed', `${what}: changed meanwhile`, { cause: err });
    if (err.statusCode === 413) return new AppError('payload_too_large', `${what}: too large`, { cause: err });
    if (err.statusCode === 429 || err.statusCode === 503) {
      return new AppError('unavailable', `${what}: storage is busy`, { cause: err, retryAfterSeconds: 1 });
    }
  }
  return new AppError('unavailable', `${what}: storage failed`, { cause: err });
}

/**
 * An abort signal for a call bounded in time: aborting also ends the SDK's retry policy
 * (by default 4 tries with back-off from 4 s, which keeps a refused connection going ~16 s).
 */
function deadline(timeoutMs: number | undefined): { abortSignal?: AbortSignal } {
  return timeoutMs === undefined ? {} : { abortSignal: AbortSignal.timeout(timeoutMs) };
}

/**
 * Blob storage over @azure/storage-blob: Azure with a managed identity, or Azurite locally
 * with its account key — the same adapter in both modes.
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

  async put(
    container: string,
    name: string,
    bytes: Buffer,
    options: { contentType: string; metadata: Record<string, string>; timeoutMs?: number },
  ) {
    try {
      const res = await this.client
        .getContainerClient(container)
        .getBlockBlobClient(name)
        .uploadData(bytes, {
          blobHTTPHeaders: { blobContentType: options.contentType },
          metadata: options.metadata,
          ...deadline(options.timeoutMs),
        });
      return { etag: unquote(res.etag) };
    } catch (err) {
      throw translate(err, `blob ${container}/${name}`);
    }
  }

  async get(container: string, name: string, options: { ifMatch?: string } = {}): Promise<BlobContent | undefined> {
    const blob = this.client.getContainerClient(container).getBlobClient(name);
    try {
      const res = await blob.download(0, undefined, options.ifMatch ? { conditions: { ifMatch: `"${options.ifMatch}"` } } : {});
      const chunks: Buffer[] = [];
      for await (const chunk of res.readableStreamBody as AsyncIterable<Buffer>) chunks.push(chunk);
      const bytes = Buffer.concat(chunks);
      return {
        name,
        etag: unquote(res.etag),
        contentType: res.contentType,
        size: bytes.length,
        lastModified: res.lastModified,
        metadata: res.metadata ?? {},
        bytes,
      };
    } catch (err) {
      if (err instanceof RestError && (err.statusCode === 404 || err.statusCode === 412)) return undefined;
      throw translate(err, `blob ${container}/${name}`);
    }
  }

  async head(container: string, name: string): Promise<BlobProperties | undefined> {
    try {
      const p = await this.client.getContainerClient(container).getBlobClient(name).getProperties();
      return {
        name,
        etag: unquote(p.etag),
        contentType: p.contentType,
        size: p.contentLength ?? 0,
        lastModified: p.lastModified,
        metadata: p.metadata ?? {},
      };
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404) return undefined;
      throw translate(err, `blob ${container}/${name}`);
    }
  }

  async delete(container: string, name: string): Promise<boolean> {
    try {
      const res = await this.client.getContainerClient(container).getBlobClient(name).deleteIfExists();
      return res.succeeded;
    } catch (err) {
      throw translate(err, `blob ${container}/${name}`);
    }
  }

  async *list(container: string): AsyncIterable<BlobProperties> {
    try {
      for await (const item of this.client.getContainerClient(container).listBlobsFlat({ includeMetadata: true })) {
        yield {
          name: item.name,
          etag: unquote(item.properties.etag),
          contentType: item.properties.contentType,
          size: item.properties.contentLength ?? 0,
          lastModified: item.properties.lastModified,
          metadata: item.metadata ?? {},
        };
      }
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404) return;
      throw translate(err, `container ${container}`);
    }
  }

  async ensureContainer(container: string, options: { timeoutMs?: number } = {}): Promise<void> {
    try {
      await this.client.getContainerClient(container).createIfNotExists(deadline(options.timeoutMs));
    } catch (err) {
      throw translate(err, `container ${container}`);
    }
  }
}
