import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/adapters/local/clock';
import { LocalServiceBus } from '../../src/adapters/local/service-bus';
import { bearer } from '../helpers/tokens';
import { startSystem, type RunningSystem } from './harness';

describe('documents API through the front door', () => {
  let sys: RunningSystem;
  let acme: string;
  let globex: string;
  let eureka: string;
  beforeAll(async () => {
    // westus2 is not served, so its subscription keeps the published messages for inspection.
    sys = await startSystem({ MERIDIAN_MAX_DOCUMENT_BYTES: '4096', MERIDIAN_SERVED_REGIONS: 'eastus,westeurope' });
    acme = await bearer('tenant-acme-corp', 'alice');
    globex = await bearer('tenant-globex-intl', 'gina');
    eureka = await bearer('tenant-eureka-gmbh', 'erik');
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  const upload = (token: string, query: string, body: string | Buffer, type = 'text/markdown') =>
    fetch(`${sys.url}/api/documents?${query}`, { method: 'POST', headers: { authorization: token, 'content-type': type }, body });
  const list = async (token: string) =>
    (
      (await (await fetch(`${sys.url}/api/documents`, { headers: { authorization: token } })).json()) as {
        items: { documentId: string; name: string; version: number; status: string }[];
      }
    ).items;

  it('accepts an upload, replaces by name with the next version, and publishes index-sync messages', async () => {
    const first = await upload(acme, 'name=Guide.md&tier=upload', '# Failover\nStay inside the boundary.');
    expect(first.status).toBe(202);
    const a = (await first.json()) as { documentId: string; version: number; status: string; boundary: string; etag: string };
    expect(a).toMatchObject({ name: 'Guide.md', tier: 'upload', boundary: 'us', version: 1, status: 'queued' });
    expect(a.etag).toMatch(/^[^"]+$/);

    const second = (await (await upload(acme, 'name=guide.md&tier=kb', '# Failover v2')).json()) as {
      documentId: string;
      version: number;
    };
    expect(second).toMatchObject({ documentId: a.documentId, version: 2 });

    const got = await fetch(`${sys.url}/api/documents/${a.documentId}`, { headers: { authorization: acme } });
    expect(await got.json()).toMatchObject({ documentId: a.documentId, name: 'guide.md', tier: 'kb', version: 2, chunks: 0 });

    // Another tenant (same boundary) and another boundary's tenant both get 404, never 403.
    expect((await fetch(`${sys.url}/api/documents/${a.documentId}`, { headers: { authorization: globex } })).status).toBe(404);
    expect((await fetch(`${sys.url}/api/documents/${a.documentId}`, { headers: { authorization: eureka } })).status).toBe(404);
    expect(await list(globex)).toEqual([]);

    // The blob trigger published one upsert per version to the global bus; the message carries no tenant data.
    const bus = new LocalServiceBus({
      path: path.join(sys.dataDir, 'global', 'bus.sqlite'),
      clock: new ManualClock(Date.now() + 3_600_000 * 0),
    });
    try {
      const until = Date.now() + 10_000;
      let stats = await bus.stats('index-sync', 'meridian-westus2-indexer');
      while (stats.active < 1 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        stats = await bus.stats('index-sync', 'meridian-westus2-indexer');
      }
      // One per blob version the trigger saw: two quick uploads may coalesce into the latest.
      expect(stats.active).toBeGreaterThanOrEqual(1);
      // The SQL filter keeps a us document away from the eu indexers (northeurope is not served either).
      expect((await bus.stats('index-sync', 'meridian-northeurope-indexer')).active).toBe(0);
      const [m] = await bus.receive('index-sync', 'meridian-westus2-indexer', { maxMessages: 1 });
      expect(m?.messageId).toMatch(new RegExp(`^upsert:${a.documentId}@[12]$`));
      expect(m?.body).toMatchObject({
        schema: 1,
        op: 'upsert',
        documentId: a.documentId,
        targetRegion: 'us',
        blob: { account: 'meridianus', container: 'documents', name: a.documentId },
      });
      expect(m?.applicationProperties).toMatchObject({ targetRegion: 'us', tier: expect.any(String) });
      expect(JSON.stringify(m?.body)).not.toMatch(/acme|alice|Guide/i);
      if (m) await bus.abandon(m.lockToken);
    } finally {
      await bus.close();
    }
  });

  it('deletes: 202, the document shows deleting at once, then 404 for others', async () => {
    const d = (await (await upload(acme, 'name=old.txt&tier=upload', 'obsolete', 'text/plain')).json()) as { documentId: string };
    const del = await fetch(`${sys.url}/api/documents/${d.documentId}`, { method: 'DELETE', headers: { authorization: acme } });
    expect(del.status).toBe(202);
    const row = await fetch(`${sys.url}/api/documents/${d.documentId}`, { headers: { authorization: acme } });
    expect(await row.json()).toMatchObject({ status: 'deleting', version: 2 });
  });

  it('refuses bad input with problem responses and stores nothing', async () => {
    const before = (await list(acme)).length;
    const cases: [string, string | Buffer, string, number, string][] = [
      ['name=a.md&tier=upload', '', 'text/markdown', 400, 'validation_failed'],
      ['name=a.md&tier=upload', 'x'.repeat(5000), 'text/markdown', 413, 'payload_too_large'],
      ['name=a.exe&tier=upload', 'MZ', 'application/octet-stream', 415, 'unsupported_media_type'],
      ['name=..%2Fx&tier=upload', 'x', 'text/plain', 400, 'validation_failed'],
      ['name=a%2F..%2F..%2Fb&tier=upload', 'x', 'text/plain', 400, 'validation_failed'],
      ['name=%2Fetc%2Fpasswd&tier=upload', 'x', 'text/plain', 400, 'validation_failed'],
      ['name=C%3A%5Cwin.txt&tier=upload', 'x', 'text/plain', 400, 'validation_failed'],
      ['name=nul%00byte&tier=upload', 'x', 'text/plain', 400, 'validation_failed'],
      [`name=${'n'.repeat(300)}&tier=upload`, 'x', 'text/plain', 400, 'validation_failed'],
      ['name=a.md&tier=forever', 'x', 'text/markdown', 400, 'validation_failed'],
      ['tier=upload', 'x', 'text/markdown', 400, 'validation_failed'],
      ['name=a.md&tier=upload&owner=mallory', 'x', 'text/markdown', 400, 'validation_failed'],
      ['name=a.md&tier=upload&scope=shared', 'x', 'text/markdown', 403, 'forbidden'],
    ];
    for (const [query, body, type, status, code] of cases) {
      const res = await upload(acme, query, body, type);
      expect(res.status, query).toBe(status);
      expect(res.headers.get('content-type'), query).toBe('application/problem+json');
      expect(((await res.json()) as { code: string }).code, query).toBe(code);
    }
    expect(await list(acme)).toHaveLength(before);
  });

  it('lets a platform-admin upload a shared document to the global store', async () => {
    const admin = await bearer('meridian-operators', 'ops', ['platform-admin']);
    const res = await upload(admin, 'name=platform-faq.md&tier=kb&scope=shared', '# Shared FAQ');
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ version: 1, boundary: 'us', status: 'queued' });
  });
});
