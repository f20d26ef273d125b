import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/adapters/local/clock';
import { LocalServiceBus } from '../../src/adapters/local/service-bus';
import { bearer } from '../helpers/tokens';
import { startSystem, type RunningSystem } from './harness';

const CORPUS = path.resolve(__dirname, '../../../shared/corpus');
const EU_MARKER = 'Kryptonite-Eureka-7F3A residency marker';

interface Doc {
  documentId: string;
  name: string;
  version: number;
  status: string;
  chunks: number;
  error?: string;
}
interface Hit {
  documentId: string;
  name: string;
  chunkId: string;
  content: string;
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const p = path.join(d, entry);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

describe('ingestion and regional indexing through npm start', () => {
  let sys: RunningSystem;
  let acme: string;
  let globex: string;
  let eureka: string;
  let admin: string;
  const corpusIds = new Map<string, string>();

  const api = (token: string, p: string, init: RequestInit = {}) =>
    fetch(`${sys.url}/api/${p}`, { ...init, headers: { authorization: token, ...(init.headers ?? {}) } });
  const upload = async (token: string, name: string, body: string | Buffer, type = 'text/markdown', extra = '') => {
    const res = await api(token, `documents?name=${encodeURIComponent(name)}&tier=upload${extra}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(202);
    return (await res.json()) as Doc;
  };
  const get = async (token: string, id: string) => (await (await api(token, `documents/${id}`)).json()) as Doc;
  const waitFor = async (token: string, id: string, ok: (d: Doc) => boolean, ms = 240_000) => {
    const until = Date.now() + ms;
    for (;;) {
      const d = await get(token, id);
      if (ok(d)) return d;
      if (Date.now() > until) throw new Error(`document ${id} never got there: ${JSON.stringify(d)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  /** Publishes a version-2 upsert of `documentId` for the us indexes straight onto the local bus. */
  const publishUpsert = async (documentId: string, suffix: string, blobName: string, extra: { timeToLiveMs?: number } = {}) => {
    const bus = new LocalServiceBus({ path: path.join(sys.dataDir, 'global', 'bus.sqlite'), clock: new ManualClock(Date.now()) });
    try {
      await bus.publish('index-sync', {
        messageId: `upsert:${documentId}@2:${suffix}`,
        body: {
          schema: 1,
          op: 'upsert',
          documentId,
          version: 2,
          targetRegion: 'us',
          blob: { account: 'meridianus', container: 'documents', name: blobName },
          etag: 'x',
          tier: 'upload',
          contentType: 'text/markdown',
          occurredAt: new Date().toISOString(),
        },
        applicationProperties: { targetRegion: 'us', tier: 'upload' },
        contentType: 'application/json',
        ...extra,
      });
    } finally {
      await bus.close();
    }
  };
  const search = async (token: string, q: string, top = 20) => {
    const res = await api(token, `search?q=${encodeURIComponent(q)}&top=${top}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { results: Hit[] }).results;
  };

  beforeAll(async () => {
    if (!existsSync(CORPUS)) throw new Error(`The sample corpus is missing: expected ${CORPUS} (shared/ beside the repository)`);
    sys = await startSystem();
    acme = await bearer('tenant-acme-corp', 'alice');
    globex = await bearer('tenant-globex-intl', 'gina');
    eureka = await bearer('tenant-eureka-gmbh', 'erik');
    admin = await bearer('meridian-operators', 'ops', ['platform-admin']);
    for (const file of readdirSync(CORPUS).filter((f) => f.endsWith('.md') && f !== 'README.md')) {
      const d = await upload(acme, file, readFileSync(path.join(CORPUS, file)));
      corpusIds.set(file, d.documentId);
    }
    const eu = await upload(
      eureka,
      'eu-policy.md',
      `# Data residency\n${EU_MARKER}. EU tenant data never leaves westeurope and northeurope.`,
    );
    corpusIds.set('eu', eu.documentId);
    const g = await upload(
      globex,
      'globex.md',
      '# Globex pricing\nGlobex confidential pricing sheet: quantum widgets cost 42 credits.',
    );
    corpusIds.set('globex', g.documentId);
    const shared = await upload(
      admin,
      'platform-faq.md',
      '# Platform FAQ\nSupport hours for every tenant: the helpdesk answers around the clock.',
      'text/markdown',
      '&scope=shared',
    );
    corpusIds.set('shared', shared.documentId);
    for (const [key, id] of corpusIds) {
      const token = key === 'eu' ? eureka : key === 'globex' ? globex : key === 'shared' ? admin : acme;
      const d = await waitFor(token, id, (x) => x.status === 'indexed' || x.status === 'failed');
      expect(d.status, `${key}: ${d.error ?? ''}`).toBe('indexed');
      expect(d.chunks).toBeGreaterThan(0);
    }
  }, 420_000);

  afterAll(async () => {
    await sys?.stop();
  });

  it('indexes every corpus document of the US tenant and finds its content', async () => {
    const hits = await search(acme, 'database failover promotion replica');
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.some((h) => h.documentId === corpusIds.get('cloud-native-failover-erp.md'))).toBe(true);
  });

  it("keeps each tenant to its own and shared documents: never another tenant's, never another boundary's", async () => {
    const own = new Set([...corpusIds.entries()].filter(([k]) => k.endsWith('.md')).map(([, v]) => v));
    const acmeHits = await search(acme, 'quantum widgets credits pricing support hours helpdesk residency', 50);
    expect(acmeHits.some((h) => h.documentId === corpusIds.get('shared'))).toBe(true);
    expect(acmeHits.every((h) => own.has(h.documentId) || h.documentId === corpusIds.get('shared'))).toBe(true);

    const globexHits = await search(globex, 'quantum widgets pricing failover helpdesk', 50);
    expect(globexHits.some((h) => h.documentId === corpusIds.get('globex'))).toBe(true);
    expect(globexHits.every((h) => h.documentId === corpusIds.get('globex') || h.documentId === corpusIds.get('shared'))).toBe(
      true,
    );

    const euHits = await search(eureka, 'residency westeurope failover helpdesk support', 50);
    expect(euHits.some((h) => h.documentId === corpusIds.get('eu'))).toBe(true);
    expect(euHits.some((h) => h.documentId === corpusIds.get('shared'))).toBe(true);
    expect(euHits.every((h) => h.documentId === corpusIds.get('eu') || h.documentId === corpusIds.get('shared'))).toBe(true);
  });

  it('stores no byte of the EU tenant content under the us or global data folders', () => {
    expect(filesContaining(path.join(sys.dataDir, 'eu'), EU_MARKER).length).toBeGreaterThan(0);
    expect(filesContaining(path.join(sys.dataDir, 'us'), EU_MARKER)).toEqual([]);
    expect(filesContaining(path.join(sys.dataDir, 'global'), EU_MARKER)).toEqual([]);
  });

  it('replacing a document leaves no chunk of the old version; deleting removes it from search at once', async () => {
    const v1 = await upload(acme, 'notes.md', '# Notes\nThe zebracorn migration runs on Tuesdays.');
    await waitFor(acme, v1.documentId, (d) => d.status === 'indexed' && d.version === 1);
    const v2 = await upload(acme, 'notes.md', '# Notes\nThe okapi migration runs on Fridays.');
    expect(v2.documentId).toBe(v1.documentId);
    await waitFor(acme, v1.documentId, (d) => d.status === 'indexed' && d.version === 2);
    const hits = (await search(acme, 'zebracorn okapi migration', 50)).filter((h) => h.documentId === v1.documentId);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.chunkId.startsWith(`${v1.documentId}:2:`) && !h.content.includes('zebracorn'))).toBe(true);

    expect((await api(acme, `documents/${v1.documentId}`, { method: 'DELETE' })).status).toBe(202);
    const after = await search(acme, 'okapi migration Fridays', 50);
    expect(after.some((h) => h.documentId === v1.documentId)).toBe(false);
  });

  it('marks a corrupt PDF failed with a reason', async () => {
    const d = await upload(
      acme,
      'broken.pdf',
      Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a pdf at all'),
      'application/pdf',
    );
    const failed = await waitFor(acme, d.documentId, (x) => x.status !== 'queued', 60_000);
    expect(failed.status).toBe('failed');
    expect(failed.error).toBeTruthy();
  });

  it('rejects a malformed message on its first delivery with the reason, counts it in index status, leaves its document alone', async () => {
    const target = await upload(acme, 'poisoned.md', '# Poison target\nThis document will receive a poison message.');
    await waitFor(acme, target.documentId, (d) => d.status === 'indexed');
    const bus = new LocalServiceBus({ path: path.join(sys.dataDir, 'global', 'bus.sqlite'), clock: new ManualClock(Date.now()) });
    const status = async () =>
      (
        (await (await api(admin, 'index/status?boundary=us')).json()) as {
          indexes: { name: string; deadLettered: number; boundary: string }[];
        }
      ).indexes;
    try {
      const before = new Map((await status()).map((i) => [i.name, i.deadLettered]));
      await publishUpsert(target.documentId, 'poison', 'not-the-document-id');
      // Each us index's subscription gets it, rejects it once and counts it (no five retries first).
      const until = Date.now() + 30_000;
      let indexes = await status();
      while (!indexes.every((i) => i.deadLettered === (before.get(i.name) ?? 0) + 1)) {
        if (Date.now() > until) throw new Error(`never counted: ${JSON.stringify(indexes)}`);
        await new Promise((r) => setTimeout(r, 250));
        indexes = await status();
      }
      expect(indexes.map((i) => i.name).sort()).toEqual(['meridian-eastus', 'meridian-westus2']);
      for (const sub of ['meridian-eastus-indexer', 'meridian-westus2-indexer']) {
        expect(await bus.stats('index-sync', sub)).toMatchObject({ active: 0, deadLettered: 0 });
      }
    } finally {
      await bus.close();
    }
    // An invalid message is no evidence about the document it names.
    expect(await get(acme, target.documentId)).toMatchObject({ status: 'indexed', version: 1 });
    expect((await api(acme, 'index/status')).status).toBe(403);
  });

  it('a message the subscription dead-letters (expired) marks its document failed with Service Bus’s reason', async () => {
    const target = await upload(acme, 'expiring.md', '# Expiring\nThis document’s next message expires unread.');
    await waitFor(acme, target.documentId, (d) => d.status === 'indexed');
    await publishUpsert(target.documentId, 'expiring', target.documentId, { timeToLiveMs: 1 });
    // The reason travels as the dead-lettered message's application property, as in Azure.
    const failed = await waitFor(acme, target.documentId, (d) => d.status === 'failed', 30_000);
    expect(failed.error).toContain('TTLExpiredException');
  });
});
