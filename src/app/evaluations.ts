/**
 * Evaluations (issue 8): a subject (a RAG answer, a transcript, or a session's transcript) is
 * scored against a rubric, one criterion per activity, fanned out in parallel by the
 * `evaluation` orchestration. The subject's text lives in the `evaluations` (or `sessions`)
 * container; the orchestration sees the evaluation id, criterion ids and scores only.
 *
 * A criterion is scored by the reasoning-model deployment through its gateway, asked for a
 * JSON verdict `{score, rationale}` that is validated; invalid output is retried once, then
 * the criterion is marked failed with the reason and the evaluation still completes. When the
 * reasoning deployments are the local stand-in (`deps.evaluator === 'local-heuristic'`), the
 * deterministic local heuristic of src/domain/evaluation.ts scores it instead, and says so.
 *
 * Identical requests (same hash of tenant, user and canonical request) within an hour return
 * the existing evaluation instead of starting another.
 */
import { randomUUID } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json';
import type { Rubric } from '../domain/coaching';
import { AppError, isAppError } from '../domain/errors';
import {
  judgePrompt,
  localVerdict,
  parseModelVerdict,
  type CriterionVerdict,
  type EvaluationResult,
  type EvaluationStatus,
  type EvaluationSubject,
} from '../domain/evaluation';
import { instanceIdFor } from '../domain/instance-ids';
import { sha256Hex } from './hashing';
import type { Principal } from '../domain/tenancy';
import type { BlobStore } from '../ports/blob-store';
import type { ChatModel } from '../ports/chat-model';
import type { Clock } from '../ports/clock';
import type { DocumentStore, Item, Stored } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import type { Orchestrations } from '../ports/orchestrations';
import type { Config } from '../config';
import { recordUsage } from './usage-events';

export const EVALUATIONS_CONTAINER = 'evaluations';
export const EVALUATION_ORCHESTRATOR = 'evaluation';
export const DEDUPE_WINDOW_MS = 3_600_000;
const VERDICT_MAX_TOKENS = 400;
/** Bound on the stored failure reason (an activity's error message). */
const MAX_ERROR_CHARS = 500;

export type EvaluationRequest =
  | { kind: 'rag'; question: string; answer: string; contexts: string[] }
  | { kind: 'transcript'; transcript: { role: string; content: string }[]; rubric?: string | undefined };

export interface EvaluationDoc extends Item {
  type: 'evaluation';
  tenantId: string;
  userId: string;
  requestId: string;
  kind: 'rag' | 'transcript' | 'session';
  rubric: string;
  /** The text to evaluate (rag and transcript requests); sessions are read from `sessions`. */
  subject?: EvaluationSubject;
  sessionId?: string;
  status: EvaluationStatus;
  createdAtMs: number;
  result?: EvaluationResult;
  usage?: { totalTokens: number };
  error?: string;
}

interface CriterionDoc extends Item {
  type: 'criterion';
  tenantId: string;
  evaluationId: string;
  verdict: CriterionVerdict;
  totalTokens: number;
}

interface DedupeDoc extends Item {
  type: 'dedupe';
  tenantId: string;
  evaluationId: string;
  createdAtMs: number;
}

/** What the orchestration gets and returns: ids and scores. */
export interface EvaluationInput {
  evaluationId: string;
  tenantId: string;
}
export interface CriterionOutcome {
  id: string;
  score: number;
  failed?: true;
}

export interface EvaluationDeps {
  config: Pick<Config, 'region' | 'rubrics'>;
  documents: DocumentStore;
  clock: Clock;
  logger: Logger;
  reasoning?: ChatModel;
  evaluator?: 'model' | 'local-heuristic';
  /** The boundary's blob account: the usage outbox (usage-events.ts). */
  blobs?: BlobStore;
}

const criterionDocId = (evaluationId: string, criterionId: string): string => `${evaluationId}:criterion:${criterionId}`;
const outcomeOf = (verdict: CriterionVerdict): CriterionOutcome => ({
  id: verdict.id,
  score: verdict.score,
  ...(verdict.failed ? { failed: true as const } : {}),
});
const dedupeDocId = (hash: string): string => `request:${hash}`;

export function createEvaluations(deps: EvaluationDeps) {
  const { documents, clock } = deps;

  function rubricOf(id: string): Rubric {
    const r = deps.config.rubrics.find((x) => x.id === id);
    if (!r) throw new AppError('validation_failed', `Unknown rubric '${id}'.`);
    return r;
  }

  async function load(input: EvaluationInput): Promise<Stored<EvaluationDoc>> {
    const doc = await documents.read<EvaluationDoc>(EVALUATIONS_CONTAINER, input.tenantId, input.evaluationId);
    if (!doc || doc.type !== 'evaluation') throw new AppError('not_found', `No evaluation ${input.evaluationId}.`);
    return doc;
  }

  /**
   * Deletes the dedupe claims that point at this evaluation, so an identical request starts a
   * new one. A claim gone or taken over by a newer request meanwhile is left as it is.
   */
  async function releaseClaims(input: EvaluationInput): Promise<void> {
    const claims = await documents.query<Stored<DedupeDoc>>(EVALUATIONS_CONTAINER, input.tenantId, {
      where: [
        { path: '/type', op: '=', value: 'dedupe' },
        { path: '/evaluationId', op: '=', value: input.evaluationId },
      ],
    });
    for (const claim of claims.items) {
      try {
        await documents.delete(EVALUATIONS_CONTAINER, input.tenantId, claim.id, { ifMatch: claim._etag });
      } catch (err) {
        if (!isAppError(err, 'not_found') && !isAppError(err, 'precondition_failed')) throw err;
      }
    }
  }

  async function subjectOf(doc: EvaluationDoc): Promise<EvaluationSubject> {
    if (doc.subject) return doc.subject;
    if (doc.sessionId) {
      const session = await documents.read<{ id: string; transcript: { role: string; content: string }[] }>(
        'sessions',
        doc.tenantId,
        doc.sessionId,
      );
      return { kind: 'transcript', transcript: (session?.transcript ?? []).map((t) => ({ role: t.role, content: t.content })) };
    }
    throw new AppError('internal', `Evaluation ${doc.id} has no subject.`);
  }

  async function judge(
    rubric: Rubric,
    criterionId: string,
    subject: EvaluationSubject,
    usage: { tenantId: string; userId: string; requestId: string; invocationId: string },
  ): Promise<{ verdict: CriterionVerdict; totalTokens: number }> {
    const criterion = rubric.criteria.find((c) => c.id === criterionId);
    if (!criterion)
      return { verdict: { id: criterionId, score: 0, rationale: 'unknown criterion', failed: true }, totalTokens: 0 };
    if (deps.evaluator !== 'model' || !deps.reasoning) return { verdict: localVerdict(criterion, subject), totalTokens: 0 };
    const prompt = judgePrompt(rubric, criterion, subject);
    let totalTokens = 0;
    let lastReason = '';
    for (let attempt = 1; attempt <= 2; attempt++) {
      let text: string;
      try {
        const completion = await deps.reasoning.complete({
          messages: [
            { role: 'system', content: prompt.system },
            { role: 'user', content: prompt.user },
          ],
          responseFormat: 'json',
          maxTokens: VERDICT_MAX_TOKENS,
        });
        totalTokens += completion.usage.totalTokens;
        await recordUsage(deps, { ...usage, source: 'evaluation' }, attempt, completion);
        text = completion.text;
      } catch (err) {
        if (!isAppError(err)) throw err;
        return {
          verdict: {
            id: criterion.id,
            score: 0,
            rationale: `failed: the reasoning model could not answer (${err.code}).`,
            failed: true,
          },
          totalTokens,
        };
      }
      const parsed = parseModelVerdict(text);
      if (parsed.ok) return { verdict: { id: criterion.id, score: parsed.score, rationale: parsed.rationale }, totalTokens };
      lastReason = parsed.reason;
      deps.logger.warn('invalid verdict from the reasoning model', { criterion: criterion.id, attempt, reason: parsed.reason });
    }
    return {
      verdict: {
        id: criterion.id,
        score: 0,
        rationale: `failed: invalid verdict from the model twice (${lastReason}).`,
        failed: true,
      },
      totalTokens,
    };
  }

  return {
    /**
     * POST /api/evaluate: starts an evaluation, or returns the one an identical request of the
     * same user started within the hour. `status` is always `running`, the 202's contract: the
     * request was accepted and the client polls Location for the real status (a deduplicated
     * one may have completed already).
     */
    async start(
      principal: Principal,
      request: EvaluationRequest,
      ctx: { requestId: string },
      orchestrations: Orchestrations,
    ): Promise<{ evaluationId: string; status: 'running'; existing: boolean }> {
      const rubric = rubricOf(request.kind === 'rag' ? 'rag' : (request.rubric ?? 'sales-discovery'));
      if (rubric.kind !== request.kind)
        throw new AppError('validation_failed', `Rubric '${rubric.id}' does not evaluate a ${request.kind}.`);
      const now = clock.now();
      const hash = sha256Hex(canonicalJson({ tenantId: principal.tenantId, userId: principal.userId, request }));
      const claimId = dedupeDocId(hash);
      const evaluationId = instanceIdFor(deps.config.region, randomUUID().replace(/-/g, ''));
      const claim: DedupeDoc = { id: claimId, type: 'dedupe', tenantId: principal.tenantId, evaluationId, createdAtMs: now };
      // Claim the request hash first, so two identical requests racing start one evaluation.
      for (;;) {
        const existing = await documents.read<DedupeDoc>(EVALUATIONS_CONTAINER, principal.tenantId, claimId);
        if (existing && now - existing.createdAtMs < DEDUPE_WINDOW_MS) {
          return { evaluationId: existing.evaluationId, status: 'running', existing: true };
        }
        try {
          if (existing) await documents.replace(EVALUATIONS_CONTAINER, claim, { ifMatch: existing._etag });
          else await documents.create(EVALUATIONS_CONTAINER, claim);
          break;
        } catch (err) {
          if (!isAppError(err, 'conflict') && !isAppError(err, 'precondition_failed')) throw err;
        }
      }
      const doc: EvaluationDoc = {
        id: evaluationId,
        type: 'evaluation',
        tenantId: principal.tenantId,
        userId: principal.userId,
        requestId: ctx.requestId,
        kind: request.kind,
        rubric: rubric.id,
        subject:
          request.kind === 'rag'
            ? { kind: 'rag', question: request.question, answer: request.answer, contexts: request.contexts }
            : { kind: 'transcript', transcript: request.transcript },
        status: 'running',
        createdAtMs: now,
      };
      await documents.create(EVALUATIONS_CONTAINER, doc);
      const input: EvaluationInput = { evaluationId, tenantId: principal.tenantId };
      try {
        await orchestrations.start(EVALUATION_ORCHESTRATOR, evaluationId, input);
      } catch (err) {
        await documents.patch(EVALUATIONS_CONTAINER, principal.tenantId, evaluationId, [
          { op: 'set', path: '/status', value: 'failed' },
          { op: 'set', path: '/error', value: 'could not start' },
        ]);
        await documents.delete(EVALUATIONS_CONTAINER, principal.tenantId, claimId).catch(() => undefined);
        throw new AppError('unavailable', 'The evaluation could not be started; try again.', {
          cause: err,
          retryAfterSeconds: 1,
        });
      }
      return { evaluationId, status: 'running', existing: false };
    },

    async get(
      principal: Principal,
      evaluationId: string,
    ): Promise<{ evaluationId: string; status: EvaluationStatus; result?: EvaluationResult }> {
      const doc = await documents.read<EvaluationDoc>(EVALUATIONS_CONTAINER, principal.tenantId, evaluationId);
      if (!doc || doc.type !== 'evaluation' || doc.userId !== principal.userId)
        throw new AppError('not_found', 'No such evaluation.');
      return { evaluationId: doc.id, status: doc.status, ...(doc.result ? { result: doc.result } : {}) };
    },

    /** The evaluation document of a closed session (idempotent). */
    async createForSession(
      session: { id: string; tenantId: string; userId: string; rubric: string; requestId: string },
      evaluationId: string,
    ) {
      const doc: EvaluationDoc = {
        id: evaluationId,
        type: 'evaluation',
        tenantId: session.tenantId,
        userId: session.userId,
        requestId: session.requestId,
        kind: 'session',
        rubric: session.rubric,
        sessionId: session.id,
        status: 'running',
        createdAtMs: clock.now(),
      };
      try {
        await documents.create(EVALUATIONS_CONTAINER, doc);
      } catch (err) {
        if (!isAppError(err, 'conflict')) throw err;
      }
    },

    // ------------------------------------------------------------- activities

    /** The criteria to fan out over, with their weights (a read: safe to retry). */
    async plan(input: EvaluationInput): Promise<{ criteria: { id: string; weight: number }[] }> {
      const doc = await load(input);
      return { criteria: rubricOf(doc.rubric).criteria.map((c) => ({ id: c.id, weight: c.weight })) };
    },

    /**
     * Scores one criterion and stores its verdict (rationale included) beside the evaluation.
     * Idempotent under retry: a verdict already stored for this evaluation and criterion is
     * returned as it is, so a retried activity or sub-orchestration does not pay the model again.
     */
    async criterion(input: EvaluationInput & { criterionId: string }, invocationId: string): Promise<CriterionOutcome> {
      const id = criterionDocId(input.evaluationId, input.criterionId);
      const earlier = await documents.read<CriterionDoc>(EVALUATIONS_CONTAINER, input.tenantId, id);
      if (earlier?.type === 'criterion') return outcomeOf(earlier.verdict);
      const doc = await load(input);
      const { verdict, totalTokens } = await judge(rubricOf(doc.rubric), input.criterionId, await subjectOf(doc), {
        tenantId: doc.tenantId,
        userId: doc.userId,
        requestId: doc.requestId,
        invocationId,
      });
      const stored: CriterionDoc = {
        id,
        type: 'criterion',
        tenantId: input.tenantId,
        evaluationId: input.evaluationId,
        verdict,
        totalTokens,
      };
      await documents.upsert(EVALUATIONS_CONTAINER, stored);
      return outcomeOf(verdict);
    },

    /**
     * The orchestration's failure path: marks a `running` evaluation `failed` with the reason
     * (kept in the document, never shown to the client) and releases the dedupe claim that
     * points at it, so an identical request starts a new evaluation instead of getting this
     * one for an hour. Idempotent: a completed or already failed evaluation keeps its status;
     * an absent one (a session closed before its evaluation document was written) is `failed`.
     */
    async fail(input: EvaluationInput & { error: string }): Promise<{ status: EvaluationStatus }> {
      const doc = await documents.read<EvaluationDoc>(EVALUATIONS_CONTAINER, input.tenantId, input.evaluationId);
      if (doc?.type === 'evaluation' && doc.status === 'completed') return { status: 'completed' };
      if (doc?.type === 'evaluation' && doc.status === 'running') {
        await documents.patch(
          EVALUATIONS_CONTAINER,
          input.tenantId,
          input.evaluationId,
          [
            { op: 'set', path: '/status', value: 'failed' },
            { op: 'set', path: '/error', value: input.error.slice(0, MAX_ERROR_CHARS) },
          ],
          { ifMatch: doc._etag },
        );
      }
      await releaseClaims(input);
      deps.logger.error('evaluation failed', { evaluationId: input.evaluationId, error: input.error });
      return { status: 'failed' };
    },

    /**
     * Fan-in: writes the result (overall from the orchestration, criteria from their documents).
     * Idempotent: an evaluation no longer `running` keeps its status (a retry after a write
     * that landed, or a `failed` written by `fail`, is reported, not overwritten).
     */
    async store(input: EvaluationInput & { overall: number | null; criteria: string[] }): Promise<{ status: EvaluationStatus }> {
      const doc = await load(input);
      if (doc.status !== 'running') {
        // A retry after the write landed: finish what that attempt may not have.
        if (doc.status === 'failed') await releaseClaims(input);
        return { status: doc.status };
      }
      const criteria: CriterionVerdict[] = [];
      let totalTokens = 0;
      for (const id of input.criteria) {
        const c = await documents.read<CriterionDoc>(
          EVALUATIONS_CONTAINER,
          input.tenantId,
          criterionDocId(input.evaluationId, id),
        );
        criteria.push(c?.verdict ?? { id, score: 0, rationale: 'failed: no verdict was stored.', failed: true });
        totalTokens += c?.totalTokens ?? 0;
      }
      const status: EvaluationStatus = input.overall === null ? 'failed' : 'completed';
      await documents.replace(
        EVALUATIONS_CONTAINER,
        {
          ...doc,
          status,
          result: { overall: input.overall ?? 0, criteria },
          usage: { totalTokens },
          ...(status === 'failed' ? { error: 'every criterion failed' } : {}),
        },
        { ifMatch: doc._etag },
      );
      // A failed evaluation (every criterion failed: the model down, say) is not kept for an
      // identical request to get back for an hour: the next one starts afresh.
      if (status === 'failed') await releaseClaims(input);
      return { status };
    },
  };
}

export type Evaluations = ReturnType<typeof createEvaluations>;
