/**
 * Sessions and evaluations end to end through `npm start` (dist/devhost/main.js) on a
 * virtual clock: tests advance time with POST /_devhost/clock/advance, they never sleep minutes.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/tokens';
import { startSystem, type RunningSystem } from './harness';

type SessionView = {
  status: string;
  exchanges: number;
  endedAt?: string;
  evaluation?: { overall: number; criteria: { id: string; score: number; rationale: string }[] };
};

async function api(sys: RunningSystem, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${sys.url}${path}`, {
    method,
    headers: { authorization: token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function advance(sys: RunningSystem, ms: number): Promise<void> {
  const res = await fetch(`${sys.url}/_devhost/clock/advance`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ms }),
  });
  expect(res.status).toBe(200);
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out; last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SALES_CRITERIA = ['discovery-questions', 'objection-handling', 'next-step-commitment'];

describe('coaching sessions over HTTP (npm start, virtual clock)', () => {
  let sys: RunningSystem;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    sys = await startSystem({ MERIDIAN_CLOCK: 'virtual', MERIDIAN_SERVED_REGIONS: 'eastus,westus2' });
    alice = await bearer('tenant-acme-corp', 'alice');
    bob = await bearer('tenant-acme-corp', 'bob');
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  const session = (id: string, token = alice) => api(sys, token, 'GET', `/api/sessions/${id}`).then((r) => r.body as SessionView);

  it('runs several exchanges, ends explicitly → completed with the rubric evaluated; then 409; another user 404', async () => {
    const started = await api(sys, alice, 'POST', '/api/sessions', { scenario: 'sales-discovery' });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ status: 'active' });
    const id = started.body['sessionId'] as string;
    expect(id).toMatch(/^eastus-[0-9a-f]{32}$/);
    const turns = [
      'What does your current process for tracking shipments look like?',
      'How do you decide on new tools, and who is involved?',
      'I understand the concern about cost. What would a pilot need to show?',
      'Could we schedule a demo next week, say Tuesday, as a next step?',
    ];
    for (const [i, text] of turns.entries()) {
      const r = await api(sys, alice, 'POST', `/api/sessions/${id}/messages`, { text });
      expect(r.status).toBe(200);
      expect(r.body['exchange']).toBe(i + 1);
      expect(typeof r.body['reply']).toBe('string');
    }
    expect((await api(sys, bob, 'GET', `/api/sessions/${id}`)).status).toBe(404);
    expect((await api(sys, bob, 'POST', `/api/sessions/${id}/messages`, { text: 'hi' })).status).toBe(404);

    // The route takes no body: unknown fields or malformed JSON are a 400 and end nothing.
    expect(await api(sys, alice, 'POST', `/api/sessions/${id}/end`, { reason: 'done' })).toMatchObject({
      status: 400,
      body: { code: 'validation_failed' },
    });
    const malformed = await fetch(`${sys.url}/api/sessions/${id}/end`, {
      method: 'POST',
      headers: { authorization: alice, 'content-type': 'application/json' },
      body: '{"reason":"done","force":true',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: 'validation_failed' });
    expect((await session(id)).status).toBe('active');

    const ended = await api(sys, alice, 'POST', `/api/sessions/${id}/end`, {});
    expect(ended).toEqual({ status: 202, body: { sessionId: id, status: 'evaluating' } });
    const done = await until(
      () => session(id),
      (s) => s.status !== 'evaluating',
    );
    expect(done.status).toBe('completed');
    expect(done.exchanges).toBe(4);
    expect(done.evaluation?.criteria.map((c) => c.id)).toEqual(SALES_CRITERIA);
    expect(done.evaluation?.overall).toBeGreaterThan(0.5);
    for (const c of done.evaluation?.criteria ?? []) expect(c.rationale).toMatch(/^local heuristic:/);

    const late = await api(sys, alice, 'POST', `/api/sessions/${id}/messages`, { text: 'One more thing?' });
    expect(late.status).toBe(409);
    expect(late.body['code']).toBe('conflict');
    expect((await api(sys, alice, 'POST', `/api/sessions/${id}/end`)).status).toBe(409);
  }, 60_000);

  it('expires an idle session after 5 minutes of virtual time and still evaluates it', async () => {
    const id = (await api(sys, alice, 'POST', '/api/sessions', { scenario: 'sales-discovery', persona: 'busy-ops-lead' })).body[
      'sessionId'
    ] as string;
    expect(
      (await api(sys, alice, 'POST', `/api/sessions/${id}/messages`, { text: 'How do you handle invoices today?' })).status,
    ).toBe(200);
    await advance(sys, 4 * 60_000);
    expect((await session(id)).status).toBe('active');
    await advance(sys, 61_000);
    const done = await until(
      () => session(id),
      (s) => s.status !== 'active' && s.status !== 'evaluating',
    );
    expect(done.status).toBe('expired');
    expect(done.evaluation?.criteria.map((c) => c.id)).toEqual(SALES_CRITERIA);
    expect((await api(sys, alice, 'POST', `/api/sessions/${id}/messages`, { text: 'Still there?' })).status).toBe(409);
  }, 60_000);

  it('evaluates a grounded RAG answer higher on groundedness than an ungrounded one; identical requests share one evaluation', async () => {
    const base = {
      kind: 'rag',
      question: 'How many vacation days do full-time employees get?',
      contexts: ['Full-time employees receive 25 vacation days per year.', 'Unused vacation days carry over until March.'],
    };
    const grounded = await api(sys, alice, 'POST', '/api/evaluate', {
      ...base,
      answer: 'Full-time employees receive 25 vacation days per year [1].',
    });
    const ungrounded = await api(sys, alice, 'POST', '/api/evaluate', {
      ...base,
      answer: 'Everyone gets unlimited paid holidays and a yearly bonus.',
    });
    expect(grounded.status).toBe(202);
    const again = await api(sys, alice, 'POST', '/api/evaluate', {
      ...base,
      answer: 'Full-time employees receive 25 vacation days per year [1].',
    });
    expect(again.body['evaluationId']).toBe(grounded.body['evaluationId']);
    const result = async (r: { body: Record<string, unknown> }) =>
      (
        await until(
          () => api(sys, alice, 'GET', `/api/evaluate/${r.body['evaluationId'] as string}`),
          (x) => x.body['status'] !== 'running',
        )
      ).body as { status: string; result: { criteria: { id: string; score: number }[] } };
    const g = await result(grounded);
    const u = await result(ungrounded);
    expect(g.status).toBe('completed');
    // Asked again once it completed: the same evaluation, and the 202 still says running (API.md).
    const late = await api(sys, alice, 'POST', '/api/evaluate', {
      ...base,
      answer: 'Full-time employees receive 25 vacation days per year [1].',
    });
    expect(late).toEqual({ status: 202, body: { evaluationId: grounded.body['evaluationId'], status: 'running' } });
    const score = (x: typeof g) => x.result.criteria.find((c) => c.id === 'groundedness')?.score ?? -1;
    expect(score(g)).toBeGreaterThan(score(u));
    expect((await api(sys, bob, 'GET', `/api/evaluate/${grounded.body['evaluationId'] as string}`)).status).toBe(404);
  }, 60_000);
});

describe('a session across a devhost restart', () => {
  it('keeps an active session through a restart of npm start on the same data dir and completes it', async () => {
    const alice = await bearer('tenant-acme-corp', 'alice');
    const env = { MERIDIAN_CLOCK: 'virtual', MERIDIAN_SERVED_REGIONS: 'eastus,westus2' };
    const first = await startSystem(env, 90_000, { keepDataDir: true });
    const dataDir = first.dataDir;
    try {
      const id = (await api(first, alice, 'POST', '/api/sessions', { scenario: 'sales-discovery' })).body['sessionId'] as string;
      expect(
        (await api(first, alice, 'POST', `/api/sessions/${id}/messages`, { text: 'What matters most to you this quarter?' }))
          .status,
      ).toBe(200);
      expect(await first.stop()).toBe(0);

      const second = await startSystem(env, 90_000, { dataDir });
      try {
        const r = await api(second, alice, 'POST', `/api/sessions/${id}/messages`, {
          text: 'Can we schedule a demo next week as a next step?',
        });
        expect(r.status).toBe(200);
        expect(r.body['exchange']).toBe(2);
        expect((await api(second, alice, 'POST', `/api/sessions/${id}/end`)).status).toBe(202);
        const done = await until(
          () => api(second, alice, 'GET', `/api/sessions/${id}`).then((x) => x.body as SessionView),
          (s) => s.status === 'completed',
        );
        expect(done.exchanges).toBe(2);
        expect(done.evaluation?.criteria).toHaveLength(3);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
