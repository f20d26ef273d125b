/**
 * IsolatedTextExtractor: LocalTextExtractor in a worker thread under time, memory and output
 * limits. A blown limit is `payload_too_large` (permanent for the indexer), the worker is
 * replaced, and the next document is extracted as usual.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { IsolatedTextExtractor } from '../../src/adapters/local/isolated-text-extractor';
import { LocalTextExtractor } from '../../src/adapters/local/text-extractor';
import { appErrorOf } from '../helpers/errors';
import { flateBombPdf, tinyPdf } from '../helpers/pdf';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
/** Limits small enough that the test process stays small; a bomb of 48 MiB inflated is over them. */
const x = new IsolatedTextExtractor({ maxArrayBufferMb: 16, maxHeapMb: 128, timeoutMs: 10_000 });
afterAll(() => x.close());

describe('IsolatedTextExtractor', () => {
  it('extracts as LocalTextExtractor does, in a worker', async () => {
    const local = new LocalTextExtractor();
    const html = bytes('<title>T</title><h1>Failover</h1><p>Cosmos DB <b>fails</b> over.</p>');
    expect(await x.extract(html, 'text/html')).toEqual(await local.extract(html, 'text/html'));
    const pdf = tinyPdf(['Meridian keeps tenant data in its boundary.'], 'Residency Memo');
    expect(await x.extract(pdf, 'application/pdf')).toEqual(await local.extract(pdf, 'application/pdf'));
    expect(pdf.byteLength).toBeGreaterThan(0); // the caller's bytes are not detached
  });

  it('passes the extractor errors through with their codes', async () => {
    expect((await appErrorOf(x.extract(bytes('x'), 'image/png'))).code).toBe('unsupported_media_type');
    const corrupt = await appErrorOf(x.extract(tinyPdf(['hello']).slice(0, 120), 'application/pdf'));
    expect(corrupt.code).toBe('validation_failed');
    expect(corrupt.message).toMatch(/PDF/);
  });

  it('stops a PDF decompression bomb at the memory limit, then extracts the next document', async () => {
    const bomb = flateBombPdf(48);
    expect(bomb.byteLength).toBeLessThan(100 * 1024);
    const t = performance.now();
    const err = await appErrorOf(x.extract(bomb, 'application/pdf'));
    expect(performance.now() - t).toBeLessThan(5000);
    expect(err.code).toBe('payload_too_large');
    expect(err.message).toBe('the document needs more than 16 MiB of memory to extract its text');
    expect((await x.extract(bytes('still here'), 'text/plain')).text).toBe('still here');
  });

  it('stops an extraction that takes longer than the timeout', async () => {
    const slow = new IsolatedTextExtractor({ maxArrayBufferMb: 1024, timeoutMs: 50 });
    try {
      await slow.extract(bytes('warm'), 'text/plain'); // the worker's start is not what is timed
      const err = await appErrorOf(slow.extract(flateBombPdf(64), 'application/pdf'));
      expect(err.code).toBe('payload_too_large');
      expect(err.message).toMatch(/took longer than 0.05 s/);
      expect((await slow.extract(bytes('next'), 'text/plain')).text).toBe('next');
    } finally {
      await slow.close();
    }
  });

  it('refuses text longer than the limit', async () => {
    const small = new IsolatedTextExtractor({ maxTextChars: 100 });
    try {
      const err = await appErrorOf(small.extract(bytes('word '.repeat(100)), 'text/plain'));
      expect(err.code).toBe('payload_too_large');
      expect(err.message).toContain('longer than 100 characters');
    } finally {
      await small.close();
    }
  });
});
