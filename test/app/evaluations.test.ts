/**
 * The criterion activity against a fake OpenAI-compatible server (MERIDIAN_OPENAI_BASE_URL):
 * invalid JSON → one retry → the criterion fails with a reason, the evaluation completes.
 * The orchestration is played by hand here (plan → criteria → store); its own replay runs in
 * the e2e suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi } from '../../bench/lib/fake-openai';
import { createEvaluations } from '../../src/app/evaluations';
import { overallOf } from '../../src/domain/evaluation';
import type { Orchestrations } from '../../src/ports/orchestrations';
import { testDeps } from '../helpers/deps';

let fake: FakeOpenAi;
beforeAll(async () => {
  fake = await startFakeOpenAi({
    // Groundedness always gets prose; every other criterion a valid verdict.
    replyText: (_d, body) =>
      JSON.stringify(body.messages ?? []).includes('Groundedness')
        ? 'Looks grounded to me!'
        : '{"score":0.8,"rationale":"Addresses the question."}',
  });
});
afterAll(async () => {
  await fake?.close();
});

const started: { name: string; id: string; input: unknown }[] = [];
const orchestrations: Orchestrations = {
  start: async (name, id, input) => void started.push({ name, id, input }),
  raise: async () => undefined,
};
const principal = { tenantId: 'tenant-acme-corp', userId: 'u1', roles: [] } as never;
const request = {
  kind: 'rag' as const,
  question: 'How many days?',
  answer: '25 days [1].',
  contexts: ['Employees get 25 days.'],
};

describe('evaluation with a model judge (fake server)', () => {
  it('retries invalid JSON once, then fails that criterion with a reason; the evaluation completes', async () => {
    const deps = testDeps({ MERIDIAN_OPENAI_BASE_URL: `${fake.url}/v1` });
    expect(deps.evaluator).toBe('model');
    const evaluations = createEvaluations(deps);
    const { evaluationId } = await evaluations.start(principal, request, { requestId: 'r1' }, orchestrations);
    expect(started.at(-1)).toEqual({
      name: 'evaluation',
      id: evaluationId,
      input: { evaluationId, tenantId: 'tenant-acme-corp' },
    });

    const input = { evaluationId, tenantId: 'tenant-acme-corp' };
    const plan = await evaluations.plan(input);
    expect(plan.criteria.map((c) => c.id)).toEqual(['groundedness', 'relevance', 'citation-accuracy']);
    const outcomes = await Promise.all(
      plan.criteria.map((c, i) => evaluations.criterion({ ...input, criterionId: c.id }, `inv-${i}`)),
    );
    expect(outcomes).toEqual([
      { id: 'groundedness', score: 0, failed: true },
      { id: 'relevance', score: 0.8 },
      { id: 'citation-accuracy', score: 0.8 },
    ]);
    const grounding = fake.requests.filter((r) => JSON.stringify(r.body).includes('Groundedness'));
    expect(grounding).toHaveLength(2);
    expect((grounding[0]?.body as { response_format?: unknown }).response_format).toEqual({ type: 'json_object' });

    const overall = overallOf(outcomes, { groundedness: 1, relevance: 1, 'citation-accuracy': 1 }) ?? null;
    expect(await evaluations.store({ ...input, overall, criteria: plan.criteria.map((c) => c.id) })).toEqual({
      status: 'completed',
    });
    const got = await evaluations.get(principal, evaluationId);
    expect(got.status).toBe('completed');
    expect(got.result?.overall).toBe(0.8);
    expect(got.result?.criteria[0]).toMatchObject({ id: 'groundedness', score: 0, failed: true });
    expect(got.result?.criteria[0]?.rationale).toMatch(/invalid verdict from the model twice \(the output is not JSON\)/);

    // One usage event per model call (4 criteria calls: 2 + 1 + 1), source "evaluation".
    const usage = await deps.documents.query<{ source: string }>('usage', 'tenant-acme-corp', {
      where: [{ path: '/source', op: '=', value: 'evaluation' }],
    });
    expect(usage.items).toHaveLength(4);
  });

  it('returns the existing evaluation for an identical request within the hour, a new one for another user', async () => {
    const deps = testDeps();
    const evaluations = createEvaluations(deps);
    const a = await evaluations.start(principal, request, { requestId: 'r1' }, orchestrations);
    const b = await evaluations.start(principal, { ...request }, { requestId: 'r2' }, orchestrations);
    expect(b).toMatchObject({ evaluationId: a.evaluationId, existing: true });
    const other = await evaluations.start(
      { ...(principal as object), userId: 'u2' } as never,
      request,
      { requestId: 'r3' },
      orchestrations,
    );
    expect(other.evaluationId).not.toBe(a.evaluationId);
    await expect(evaluations.get({ ...(principal as object), userId: 'u2' } as never, a.evaluationId)).rejects.toMatchObject({
      code: 'not_found',
    });
  });

  it('answers an identical request with status running even once the evaluation completed (the client polls Location)', async () => {
    const deps = testDeps();
    const evaluations = createEvaluations(deps);
    const first = await evaluations.start(principal, request, { requestId: 'r1' }, orchestrations);
    expect(first).toEqual({ evaluationId: first.evaluationId, status: 'running', existing: false });
    const input = { evaluationId: first.evaluationId, tenantId: 'tenant-acme-corp' };
    const criteria = (await evaluations.plan(input)).criteria.map((c) => c.id);
    const outcomes = await Promise.all(criteria.map((id, i) => evaluations.criterion({ ...input, criterionId: id }, `inv-${i}`)));
    const overall = overallOf(outcomes, Object.fromEntries(criteria.map((id) => [id, 1]))) ?? null;
    expect(await evaluations.store({ ...input, overall, criteria })).toEqual({ status: 'completed' });
    const again = await evaluations.start(principal, { ...request }, { requestId: 'r2' }, orchestrations);
    expect(again).toEqual({ evaluationId: first.evaluationId, status: 'running', existing: true });
    expect((await evaluations.get(principal, first.evaluationId)).status).toBe('completed');
  });

  it('an evaluation whose every criterion failed is not handed back to an identical request: that one starts afresh', async () => {
    const deps = testDeps();
    const evaluations = createEvaluations(deps);
    const first = await evaluations.start(principal, request, { requestId: 'r1' }, orchestrations);
    const input = { evaluationId: first.evaluationId, tenantId: 'tenant-acme-corp' };
    const criteria = (await evaluations.plan(input)).criteria.map((c) => c.id);
    // The orchestration's fan-in with no verdict at all (overall null): the store is retried too.
    expect(await evaluations.store({ ...input, overall: null, criteria })).toEqual({ status: 'failed' });
    expect(await evaluations.store({ ...input, overall: null, criteria })).toEqual({ status: 'failed' });
    expect((await evaluations.get(principal, first.evaluationId)).status).toBe('failed');
    const again = await evaluations.start(principal, { ...request }, { requestId: 'r2' }, orchestrations);
    expect(again.existing).toBe(false);
    expect(again.evaluationId).not.toBe(first.evaluationId);
  });
});
