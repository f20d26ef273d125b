/**
 * `blobTrigger` functions on Azurite: each function's container is listed every `pollMs`; a
 * blob version (name + etag) not yet in the function's receipts is downloaded and handed to
 * the function; the receipt is written after success, so each version triggers once, also
 * across devhost restarts. A version that fails 5 times is receipted as poison (the Functions
 * host moves it to `webjobs-blobtrigger-poison`) and logged. Deletes never trigger (as in Azure).
 *
 * Connections: a binding's `connection` naming `GlobalBlobStorage` reads the global
 * (tenant-free) Azurite; any other reads the boundary's.
 */
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AZURITE_DEV_KEY } from '../../src/adapters/local/azurite';
import type { FunctionHost, FunctionInfo } from '../host';
import type { RpcTypedData } from '../functions-core';

export const DEFAULT_BLOB_POLL_MS = 250;
export const MAX_BLOB_ATTEMPTS = 5;

export interface BlobAccount {
  url: string;
  account: string;
}

interface Receipts {
  [blobName: string]: { etag: string; failures?: number; poison?: boolean };
}

/** `documents/{name}` → container `documents` and a matcher yielding the named parts. */
export function parseBlobPath(pattern: string): {
  container: string;
  match: (name: string) => Record<string, string> | undefined;
} {
  const slash = pattern.indexOf('/');
  const container = slash < 0 ? pattern : pattern.slice(0, slash);
  const rest = slash < 0 ? '{name}' : pattern.slice(slash + 1) || '{name}';
  const names: string[] = [];
  const source = rest.replace(
    /\{([A-Za-z_][A-Za-z0-9_]*)\}|([.*+?^$()|[\]\\])/g,
    (whole: string, name: string | undefined, special: string | undefined, offset: number) => {
      if (!name) return `\\${special}`;
      names.push(name);
      // The last placeholder may span folders (`{name}` of `a/b.md`); the others stop at '/'.
      return offset + whole.length === rest.length ? '(.+)' : '([^/]+?)';
    },
  );
  const regex = new RegExp(`^${source}$`);
  return {
    container,
    match: (blobName) => {
      const m = regex.exec(blobName);
      if (!m) return undefined;
      return Object.fromEntries(names.map((n, i) => [n, m[i + 1] as string]));
    },
  };
}

export async function startBlobTriggers(options: {
  host: FunctionHost;
  accounts: { boundary: BlobAccount; global?: BlobAccount };
  receiptsDir: string;
  pollMs?: number;
  log: (message: string, fields?: Record<string, unknown>) => void;
}): Promise<{ stop(): Promise<void>; pollOnce(): Promise<void> }> {
  const fns = options.host.functions().filter((f) => f.trigger.type === 'blobTrigger');
  const watchers = fns.map((fn) => {
    const pattern = String(fn.trigger['path'] ?? '');
    const { container, match } = parseBlobPath(pattern);
    const account = fn.trigger['connection'] === 'GlobalBlobStorage' ? options.accounts.global : options.accounts.boundary;
    if (!account) throw new Error(`${fn.name}: no local account for connection ${String(fn.trigger['connection'])}`);
    const service = new BlobServiceClient(account.url, new StorageSharedKeyCredential(account.account, AZURITE_DEV_KEY));
    const client = service.getContainerClient(container);
    const file = path.join(options.receiptsDir, `blob-receipts-${fn.name}.json`);
    let receipts: Receipts = {};
    try {
      receipts = JSON.parse(readFileSync(file, 'utf8')) as Receipts;
    } catch {
      receipts = {};
    }
    return { fn, client, match, file, receipts, ready: false };
  });

  const save = (w: (typeof watchers)[number]) => {
    mkdirSync(path.dirname(w.file), { recursive: true });
    writeFileSync(`${w.file}.tmp`, JSON.stringify(w.receipts));
    renameSync(`${w.file}.tmp`, w.file);
  };

  const pollWatcher = async (w: (typeof watchers)[number]) => {
    if (!w.ready) {
      await w.client.createIfNotExists();
      w.ready = true;
    }
    const seen = new Set<string>();
    for await (const item of w.client.listBlobsFlat({ includeMetadata: true })) {
      seen.add(item.name);
      const etag = (item.properties.etag ?? '').replace(/"/g, '');
      const receipt = w.receipts[item.name];
      if (receipt && receipt.etag === etag && (receipt.poison || receipt.failures === undefined)) continue;
      const parts = w.match(item.name);
      if (!parts) continue;
      await invoke(w.fn, w.client, item.name, etag, item.properties, item.metadata ?? {}, parts).then(
        () => {
          w.receipts[item.name] = { etag };
        },
        (err: unknown) => {
          const failures = (receipt?.etag === etag ? (receipt.failures ?? 0) : 0) + 1;
          const poison = failures >= MAX_BLOB_ATTEMPTS;
          w.receipts[item.name] = { etag, failures, ...(poison ? { poison } : {}) };
          options.log(`blobTrigger ${w.fn.name} failed for ${item.name}${poison ? ' (poison: giving up)' : ''}`, {
            error: (err as Error)?.message ?? String(err),
            attempt: failures,
          });
        },
      );
      save(w);
    }
    let pruned = false;
    for (const name of Object.keys(w.receipts)) {
      if (!seen.has(name)) {
        delete w.receipts[name];
        pruned = true;
      }
    }
    if (pruned) save(w);
  };

  const invoke = async (
    fn: FunctionInfo,
    client: ContainerClient,
    name: string,
    etag: string,
    properties: { contentType?: string; contentLength?: number; lastModified?: Date },
    metadata: Record<string, string>,
    parts: Record<string, string>,
  ) => {
    const blob = client.getBlobClient(name);
    const content = await blob.downloadToBuffer(undefined, undefined, { conditions: { ifMatch: `"${etag}"` } });
    const triggerMetadata: Record<string, RpcTypedData> = {
      BlobTrigger: { string: `${client.containerName}/${name}` },
      Uri: { string: blob.url },
      Properties: {
        json: JSON.stringify({
          ETag: etag,
          ContentType: properties.contentType ?? null,
          Length: properties.contentLength ?? content.length,
          LastModified: properties.lastModified?.toISOString() ?? null,
        }),
      },
      Metadata: { json: JSON.stringify(metadata) },
    };
    for (const [k, v] of Object.entries(parts)) triggerMetadata[k] = { string: v };
    await options.host.invoke(fn.name, { inputData: [{ name: fn.triggerName, data: { bytes: content } }], triggerMetadata });
  };

  // Containers exist before the host reports ready, so a first upload cannot race the poller.
  await Promise.all(
    watchers.map(async (w) => {
      await w.client.createIfNotExists();
      w.ready = true;
    }),
  );
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const pollOnce = async () => {
    for (const w of watchers) {
      try {
        await pollWatcher(w);
      } catch (err) {
        options.log(`blobTrigger ${w.fn.name}: listing failed`, { error: (err as Error)?.message ?? String(err) });
      }
    }
  };
  const loop = () => {
    if (stopped) return;
    running = pollOnce().finally(() => {
      if (!stopped) timer = setTimeout(loop, options.pollMs ?? DEFAULT_BLOB_POLL_MS);
    });
  };
  if (watchers.length) loop();
  return {
    pollOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
