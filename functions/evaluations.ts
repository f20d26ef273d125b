/** Evaluations (API.md "POST /api/evaluate", "GET /api/evaluate/{id}") and the activities of `evaluation`. */
import { app, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { createEvaluations, type EvaluationInput } from '../src/app/evaluations';
import { getDeps } from '../src/composition';
import { authenticated, json, readJson } from './lib/http';
import { durableClientInput, orchestrationsOf, redirectToHome } from './lib/durable';
import { guardModelCall } from './lib/model-limits';
import './orchestrations/evaluation';

const TEXT = 20_000;
const body = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('rag'),
      question: z.string().min(1).max(TEXT),
      answer: z.string().min(1).max(TEXT),
      contexts: z.array(z.string().min(1).max(TEXT)).min(1).max(20),
    })
    .strict(),
  z
    .object({
      kind: z.literal('transcript'),
      transcript: z
        .array(z.object({ role: z.enum(['user', 'assistant']), content: z.string().min(1).max(TEXT) }).strict())
        .min(1)
        .max(200),
      rubric: z.string().min(1).max(64).optional(),
    })
    .strict(),
]);
const noStore = { 'cache-control': 'no-store' };

export const startEvaluation = authenticated({}, async ({ req, deps, principal, requestId, context }) => {
  const request = await readJson(req, body);
  await guardModelCall(deps, principal);
  const out = await createEvaluations(deps).start(principal, request, { requestId }, orchestrationsOf(context));
  return json(
    202,
    { evaluationId: out.evaluationId, status: out.status },
    { ...noStore, location: `/api/evaluate/${out.evaluationId}` },
  );
});

export const getEvaluation = authenticated({}, async ({ req, deps, principal }) => {
  const evaluationId = req.params['evaluationId'] ?? '';
  const redirect = redirectToHome(deps, evaluationId, req.url);
  if (redirect) return redirect;
  return json(200, await createEvaluations(deps).get(principal, evaluationId), noStore);
});

app.http('startEvaluation', {
  methods: ['POST'],
  route: 'evaluate',
  extraInputs: [durableClientInput],
  handler: startEvaluation,
});
app.http('getEvaluation', { methods: ['GET'], route: 'evaluate/{evaluationId}', handler: getEvaluation });

// ---- activities of the evaluation orchestration
export async function evaluationPlanActivity(input: unknown, _context: InvocationContext) {
  return createEvaluations(getDeps()).plan(input as EvaluationInput);
}
export async function evaluateCriterionActivity(input: unknown, context: InvocationContext) {
  return createEvaluations(getDeps()).criterion(input as EvaluationInput & { criterionId: string }, context.invocationId);
}
export async function storeEvaluationActivity(input: unknown, _context: InvocationContext) {
  return createEvaluations(getDeps()).store(input as EvaluationInput & { overall: number | null; criteria: string[] });
}
export async function failEvaluationActivity(input: unknown, _context: InvocationContext) {
  return createEvaluations(getDeps()).fail(input as EvaluationInput & { error: string });
}
df.app.activity('evaluationPlan', { handler: evaluationPlanActivity });
df.app.activity('evaluateCriterion', { handler: evaluateCriterionActivity });
df.app.activity('storeEvaluation', { handler: storeEvaluationActivity });
df.app.activity('failEvaluation', { handler: failEvaluationActivity });
