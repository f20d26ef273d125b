import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/tokens';
import { startSystem, type RunningSystem } from './harness';

const CORPUS = path.resolve(__dirname, '../../../shared/corpus');
// Two of the sample corpus's documents (the local embedder does ~9 chunks/s; the whole corpus would take minutes).
const DOCS = ['scale-or-fail-exercise.md', 'medium-scale-architecture.md'];

interface Answer {
  conversationId: string;
  messageId: string;
  answer: string;
  citations: { documentId: string; name: string; chunkId: string }[];
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  model: { region: string; deployment: string; local?: boolean };
  cached: boolean;
}

describe('chat through npm start on the sample corpus', () => {
  let sys: RunningSystem;
  let alice: string;
  let bob: string;
  let gina: string;
  beforeAll(async () => {
    sys = await startSystem();
    alice = await bearer('tenant-acme-corp', 'alice');
    bob = await bearer('tenant-acme-corp', 'bob');
    gina = await bearer('tenant-globex-intl', 'gina');
    for (const name of DOCS) {
      const res = await upload(name, readFileSync(path.join(CORPUS, name)));
      expect(res.status).toBe(202);
    }
    await waitIndexed(DOCS.length, 1);
  }, 180_000);
  afterAll(async () => {
    await sys?.stop();
  });

  const upload = (name: string, body: string | Buffer) =>
    fetch(`${sys.url}/api/documents?name=${encodeURIComponent(name)}&tier=upload`, {
      method: 'POST',
      headers: { authorization: alice, 'content-type': 'text/markdown' },
      body,
    });

  async function waitIndexed(count: number, minVersion: number, timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const res = await fetch(`${sys.url}/api/documents`, { headers: { authorization: alice } });
      const items = ((await res.json()) as { items: { status: string; version: number }[] }).items;
      if (items.filter((i) => i.status === 'indexed' && i.version >= minVersion).length >= count) return;
      if (Date.now() > until) throw new Error(`documents not indexed in time: ${JSON.stringify(items)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function ask(token: string, body: Record<string, unknown>, accept = 'application/json'): Promise<Response> {
    return fetch(`${sys.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'application/json', accept },
      body: JSON.stringify(body),
    });
  }

  it('answers cite the document that holds the answer; a follow-up uses the conversation; others get 404', async () => {
    const res = await ask(alice, { message: 'How many stores does the retail client want to roll out to?' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-meridian-region')).toBe('eastus');
    const first = (await res.json()) as Answer;
    expect(first.cached).toBe(false);
    expect(first.answer).toMatch(/roll out to ALL stores/);
    expect(first.citations.length).toBeGreaterThan(0);
    expect(first.citations.every((c) => c.name === 'scale-or-fail-exercise.md')).toBe(true);
    expect(first.model).toMatchObject({ region: 'eastus', deployment: 'chat', local: true });

    const follow = (await (
      await ask(alice, {
        message: 'What is the monthly cost estimate of the medium scale architecture?',
        conversationId: first.conversationId,
      })
    ).json()) as Answer;
    expect(follow.conversationId).toBe(first.conversationId);
    expect(follow.citations.map((c) => c.name)).toContain('medium-scale-architecture.md');
    expect(follow.answer).toMatch(/€500-1500/);

    const conv = await fetch(`${sys.url}/api/conversations/${first.conversationId}`, { headers: { authorization: alice } });
    expect(conv.status).toBe(200);
    const body = (await conv.json()) as { messages: { role: string; content: string; citations?: unknown[] }[] };
    expect(body.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(body.messages[1]?.citations).toEqual(first.citations);

    for (const token of [bob, gina]) {
      const other = await fetch(`${sys.url}/api/conversations/${first.conversationId}`, { headers: { authorization: token } });
      expect(other.status).toBe(404);
      expect(((await other.json()) as { code: string }).code).toBe('not_found');
      expect((await ask(token, { message: 'and then?', conversationId: first.conversationId })).status).toBe(404);
    }
  });

  it('streams deltas then done over SSE', async () => {
    const res = await ask(alice, { message: 'What response time did the POC have?' }, 'text/event-stream');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => m[1]);
    expect(events.at(-1)).toBe('done');
    expect(events.slice(0, -1).every((e) => e === 'delta')).toBe(true);
  });

  it('cache: a repeat is a hit; after the cited document is replaced, a miss citing the new version', async () => {
    const q = { message: 'Which POC architecture had no load balancer and no caching?' };
    const first = (await (await ask(alice, q)).json()) as Answer;
    expect(first.cached).toBe(false);
    const cited = first.citations[0];
    expect(cited?.name).toBe('scale-or-fail-exercise.md');
    const again = (await (await ask(bob, q)).json()) as Answer;
    expect(again).toMatchObject({ cached: true, answer: first.answer, citations: first.citations });

    const replaced = await upload(
      'scale-or-fail-exercise.md',
      '# Scale or Fail\n\nThe POC architecture had no load balancer, no caching and a single Azure Container App in Sweden.\n',
    );
    expect(replaced.status).toBe(202);
    await waitIndexed(DOCS.length, 1);
    const until = Date.now() + 30_000;
    let after: Answer;
    for (;;) {
      after = (await (await ask(alice, q)).json()) as Answer;
      if (!after.cached || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(after.cached).toBe(false);
    expect(after.answer).toMatch(/Sweden/);
    expect(after.citations.find((c) => c.name === 'scale-or-fail-exercise.md')?.chunkId).toMatch(
      new RegExp(`^${cited?.documentId}:2:`),
    );
  }, 60_000);
});
