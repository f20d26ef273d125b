import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi } from '../../bench/lib/fake-openai';
import { bearer } from '../helpers/tokens';
import { startSystem, type RunningSystem } from './harness';

/**
 * A chat stream the client abandons, through `npm start` against an OpenAI-compatible
 * endpoint (the fake) that streams slowly. The programming model's HTTP-stream path reads a
 * response body to its end whether or not the client is still there (its proxy writes each
 * chunk without watching the connection; the handler gets no signal), so the model's answer
 * runs to `done` and is accounted with the usage the model reported — the same as under the
 * Functions host. (A consumer that does stop early, or a model that breaks off after its first
 * delta, is accounted from what was streamed: test/app/chat.test.ts.)
 */
describe('an abandoned chat stream through npm start', () => {
  let fake: FakeOpenAi;
  let sys: RunningSystem;
  beforeAll(async () => {
    fake = await startFakeOpenAi({ chatDelayMs: 0, embeddingDelayMs: 0 });
    sys = await startSystem({
      MERIDIAN_OPENAI_BASE_URL: `${fake.url}/v1`,
      MERIDIAN_OPENAI_MODEL: 'gpt-4o-mini',
      MERIDIAN_OPENAI_EMBEDDING_MODEL: 'text-embedding-3-small',
    });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
    await fake?.close();
  });

  it('is still accounted: the ledger behind GET /api/usage shows the model call', async () => {
    const words = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
    // 40 deltas 25 ms apart: the client leaves after the first few.
    fake.enqueue('gpt-4o-mini', { text: words, deltaDelayMs: 25, usage: { promptTokens: 321, completionTokens: 123 } });
    const user = await bearer('tenant-acme-corp', 'erin');
    const abort = new AbortController();
    const res = await fetch(`${sys.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: user, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ message: 'Tell me everything.' }),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let seen = '';
    while (!seen.includes('word4 ')) seen += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    expect(seen).not.toContain('event: done');

    const admin = await bearer('tenant-acme-corp', 'ada', ['admin']);
    const period = new Date().toISOString().slice(0, 7);
    let totals: { promptTokens: number; completionTokens: number } | undefined;
    for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
      const usage = await fetch(`${sys.url}/api/usage?period=${period}`, { headers: { authorization: admin } });
      expect(usage.status).toBe(200);
      totals = ((await usage.json()) as { totals: typeof totals }).totals;
      if (totals && totals.completionTokens > 0) break;
    }
    expect(totals).toMatchObject({ promptTokens: 321, completionTokens: 123 });
  }, 60_000);
});
