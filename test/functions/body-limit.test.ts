/**
 * The body limits hold in the handlers themselves, not only in devhost: in Azure the Functions
 * host accepts far larger bodies and nothing else would stop a handler from buffering them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { uploadDocument } from '../../functions/documents';
import { authenticated, json, readJson } from '../../functions/lib/http';
import { setDepsForTesting } from '../../src/composition';
import { call, testDeps } from '../helpers/deps';
import { bearer } from '../helpers/tokens';

afterEach(() => setDepsForTesting(undefined));

const echo = authenticated({}, async ({ req }) => json(200, await readJson(req, z.object({ message: z.string() }).strict())));

describe('request body limits in the handlers', () => {
  it('a JSON body over MERIDIAN_MAX_BODY_BYTES is 413, declared or not; one within it is read (a BOM too)', async () => {
    testDeps({ MERIDIAN_MAX_BODY_BYTES: '1024' });
    const headers = { authorization: await bearer('tenant-acme-corp', 'alice', []), 'content-type': 'application/json' };
    const big = JSON.stringify({ message: 'x'.repeat(2000) });
    for (const extra of [{ 'content-length': String(big.length) }, {}] as Record<string, string>[]) {
      const res = await call(echo, {
        method: 'POST',
        url: 'http://127.0.0.1/api/probe',
        headers: { ...headers, ...extra },
        body: big,
      });
      expect(res.status).toBe(413);
      expect(res.body).toMatchObject({ code: 'payload_too_large', detail: 'Request bodies are limited to 1024 bytes.' });
    }
    const ok = await call(echo, { method: 'POST', url: 'http://127.0.0.1/api/probe', headers, body: '\ufeff{"message":"hi"}' });
    expect(ok).toMatchObject({ status: 200, body: { message: 'hi' } });
  });

  it('a document over MERIDIAN_MAX_DOCUMENT_BYTES is 413 before it is buffered whole', async () => {
    testDeps({ MERIDIAN_MAX_DOCUMENT_BYTES: '100' });
    const res = await call(uploadDocument, {
      method: 'POST',
      url: 'http://127.0.0.1/api/documents?name=a.md&tier=upload',
      headers: { authorization: await bearer('tenant-acme-corp', 'alice', []), 'content-type': 'text/markdown' },
      body: '#'.repeat(101),
    });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'payload_too_large', detail: 'Documents are limited to 100 bytes.' });
  });
});
