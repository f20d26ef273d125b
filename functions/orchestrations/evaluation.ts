/**
 * `evaluation`: fans out one `evaluateCriterion` activity per rubric criterion in parallel,
 * fans in, computes the overall score (weighted mean of the criteria that did not fail) and
 * stores the result. Input and outputs are ids and scores; rationales and the evaluated text
 * stay in the `evaluations`/`sessions` containers. Deterministic (CONVENTIONS.md item 5).
 *
 * Every activity is called with CALL_RETRY. When one still fails, `failEvaluation` marks the
 * evaluation `failed` with the reason and releases its dedupe claim, and the orchestration
 * completes with `status: 'failed'`: the failure is handled, so a parent (`sessionLifecycle`)
 * reads it from the result instead of retrying a sub-orchestration whose outcome is stored.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import type { CriterionOutcome, EvaluationInput } from '../../src/app/evaluations';
import { overallOf } from '../../src/domain/evaluation';
import { CALL_RETRY, failureReason } from './retry-policy';

export function* evaluation(context: OrchestrationContext): Generator<df.Task, unknown, unknown> {
  const input = context.df.getInput() as EvaluationInput;
  try {
    const plan = (yield context.df.callActivityWithRetry('evaluationPlan', CALL_RETRY, input)) as {
      criteria: { id: string; weight: number }[];
    };
    const outcomes = (yield context.df.Task.all(
      plan.criteria.map((c) =>
        context.df.callActivityWithRetry('evaluateCriterion', CALL_RETRY, { ...input, criterionId: c.id }),
      ),
    )) as CriterionOutcome[];
    const weights: Record<string, number> = {};
    for (const c of plan.criteria) weights[c.id] = c.weight;
    const overall = overallOf(outcomes, weights) ?? null;
    const stored = (yield context.df.callActivityWithRetry('storeEvaluation', CALL_RETRY, {
      ...input,
      overall,
      criteria: plan.criteria.map((c) => c.id),
    })) as { status: string };
    return { status: stored.status, overall };
  } catch (err) {
    const error = failureReason(err);
    const failed = (yield context.df.callActivityWithRetry('failEvaluation', CALL_RETRY, { ...input, error })) as {
      status: string;
    };
    return { status: failed.status, overall: null, error };
  }
}

df.app.orchestration('evaluation', evaluation);
