/**
 * `evaluation`: fans out one `evaluateCriterion` activity per rubric criterion in parallel,
 * fans in, computes the overall score (weighted mean of the criteria that did not fail) and
 * stores the result. Input and outputs are ids and scores; rationales and the evaluated text
 * stay in the `evaluations`/`sessions` containers. Deterministic (CONVENTIONS.md item 5).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import type { CriterionOutcome, EvaluationInput } from '../../src/app/evaluations';
import { overallOf } from '../../src/domain/evaluation';

export function* evaluation(context: OrchestrationContext): Generator<df.Task, unknown, unknown> {
  const input = context.df.getInput() as EvaluationInput;
  const plan = (yield context.df.callActivity('evaluationPlan', input)) as { criteria: { id: string; weight: number }[] };
  const outcomes = (yield context.df.Task.all(
    plan.criteria.map((c) => context.df.callActivity('evaluateCriterion', { ...input, criterionId: c.id })),
  )) as CriterionOutcome[];
  const weights: Record<string, number> = {};
  for (const c of plan.criteria) weights[c.id] = c.weight;
  const overall = overallOf(outcomes, weights) ?? null;
  const stored = (yield context.df.callActivity('storeEvaluation', {
    ...input,
    overall,
    criteria: plan.criteria.map((c) => c.id),
  })) as { status: string };
  return { status: stored.status, overall };
}

df.app.orchestration('evaluation', evaluation);
