import { USAGE_CONTAINER } from '../../src/app/usage-ledger';
import { AppError, type ErrorCode } from '../../src/domain/errors';
import type { BlobContent, BlobProperties, BlobStore } from '../../src/ports/blob-store';
import type { DocumentStore } from '../../src/ports/document-store';

/**
 * A BlobStore in memory for use-case tests (the Azurite-backed adapter has its own tests):
 * containers must exist before a put (as in Azure: `not_found`), and `failPuts` makes the
 * account refuse writes (`unavailable`), as a storage outage would; `failDeletes` does the same
 * for that many deletes.
 */
export class MemoryBlobStore implements BlobStore {
  readonly account = 'memory';
  readonly containers = new Map<string, Map<string, BlobContent>>();
  failPuts = false;
  failDeletes = 0;
  private etag = 0;

  constructor(containers: string[] = []) {
    for (const c of containers) this.containers.set(c, new Map());
  }

  async check(): Promise<string> {
    return this.account;
  }

  async put(container: string, name: string, bytes: Buffer, options: { contentType: string; metadata: Record<string, string> }) {
    if (this.failPuts) throw new AppError('unavailable', `blob ${container}/${name}: storage failed`);
    const c = this.containers.get(container);
    if (!c) throw new AppError('not_found', `blob ${container}/${name}: not found`);
    const etag = `e${++this.etag}`;
    c.set(name, {
      name,
      etag,
      contentType: options.contentType,
      size: bytes.length,
      lastModified: new Date(),
      metadata: { ...options.metadata },
      bytes: Buffer.from(bytes),
    });
    return { etag };
  }

  async get(container: string, name: string): Promise<BlobContent | undefined> {
    return this.containers.get(container)?.get(name);
  }

  async head(container: string, name: string): Promise<BlobProperties | undefined> {
    const b = this.containers.get(container)?.get(name);
    if (!b) return undefined;
    const { bytes: _bytes, ...props } = b;
    return props;
  }

  async delete(container: string, name: string): Promise<boolean> {
    if (this.failDeletes > 0) {
      this.failDeletes--;
      throw new AppError('unavailable', `blob ${container}/${name}: storage failed`);
    }
    return this.containers.get(container)?.delete(name) ?? false;
  }

  async *list(container: string): AsyncIterable<BlobProperties> {
    for (const b of [...(this.containers.get(container)?.values() ?? [])].sort((x, y) => x.name.localeCompare(y.name))) {
      const { bytes: _bytes, ...props } = b;
      yield props;
    }
  }

  async ensureContainer(container: string): Promise<void> {
    if (!this.containers.has(container)) this.containers.set(container, new Map());
  }
}

/** The document store, except that creates in `usage` fail while `outage.failures` > 0. */
export function withUsageOutage(store: DocumentStore, outage: { failures: number; code?: ErrorCode }): DocumentStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'create') {
        return async (container: string, item: never) => {
          if (container === USAGE_CONTAINER && outage.failures > 0) {
            outage.failures--;
            throw new AppError(outage.code ?? 'unavailable', 'usage container: service unavailable');
          }
          return target.create(container, item);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
