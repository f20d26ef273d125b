/**
 * Coaching scenarios and evaluation rubrics (config/scenarios/*.json, config/rubrics/*.json),
 * validated at load, and the rules of a session's lifecycle that do not need I/O.
 */
import { z } from 'zod';

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** How the local evaluator scores a criterion (src/domain/evaluation.ts documents each). */
export const localHeuristicSchema = z
  .object({
    heuristic: z.enum(['open-questions', 'keyword-coverage', 'groundedness', 'relevance', 'citation-accuracy']),
    /** keyword-coverage: phrases looked for in the trainee's turns (lower case). */
    keywords: z.array(z.string().min(1)).optional(),
    /** open-questions / keyword-coverage: how many hits make a full score. */
    target: z.number().int().min(1).optional(),
  })
  .strict();

export const criterionSchema = z
  .object({
    id: z.string().regex(ID),
    title: z.string().min(1),
    /** What a judge model is asked to assess. */
    description: z.string().min(1),
    weight: z.number().positive().default(1),
    local: localHeuristicSchema,
  })
  .strict();

export const rubricSchema = z
  .object({
    $comment: z.string().optional(),
    id: z.string().regex(ID),
    title: z.string().min(1),
    /** What it evaluates: a role-play transcript or a RAG answer. */
    kind: z.enum(['transcript', 'rag']),
    criteria: z.array(criterionSchema).min(1).max(10),
  })
  .strict();

export const personaSchema = z
  .object({ id: z.string().regex(ID), name: z.string().min(1), instructions: z.string().min(1) })
  .strict();

export const scenarioSchema = z
  .object({
    $comment: z.string().optional(),
    id: z.string().regex(ID),
    title: z.string().min(1),
    /** The situation the trainee practises, shown to the persona as context. */
    description: z.string().min(1),
    /** The rubric the transcript is evaluated against (a `transcript` rubric). */
    rubric: z.string().regex(ID),
    /** The first is the default persona. */
    personas: z.array(personaSchema).min(1),
    limits: z
      .object({
        idleTimeoutSeconds: z.number().int().min(1).default(300),
        maxDurationSeconds: z.number().int().min(1).default(900),
        maxExchanges: z.number().int().min(1).max(200).default(30),
      })
      .strict()
      .default({ idleTimeoutSeconds: 300, maxDurationSeconds: 900, maxExchanges: 30 }),
  })
  .strict();

export type Criterion = z.infer<typeof criterionSchema>;
export type Rubric = z.infer<typeof rubricSchema>;
export type Persona = z.infer<typeof personaSchema>;
export type Scenario = z.infer<typeof scenarioSchema>;

/** Catalog problems: a scenario naming a missing rubric, or a rubric of the wrong kind. */
export function catalogProblems(scenarios: readonly Scenario[], rubrics: readonly Rubric[]): string[] {
  const problems: string[] = [];
  for (const s of scenarios) {
    const r = rubrics.find((x) => x.id === s.rubric);
    if (!r) problems.push(`scenario ${s.id}: unknown rubric ${s.rubric}`);
    else if (r.kind !== 'transcript') problems.push(`scenario ${s.id}: rubric ${s.rubric} is not a transcript rubric`);
  }
  const ids = new Set<string>();
  for (const r of rubrics) {
    if (ids.has(r.id)) problems.push(`rubric ${r.id} is defined twice`);
    ids.add(r.id);
    const c = new Set<string>();
    for (const k of r.criteria) {
      if (c.has(k.id)) problems.push(`rubric ${r.id}: criterion ${k.id} is listed twice`);
      c.add(k.id);
    }
  }
  return problems;
}

// ------------------------------------------------------------------ sessions

export type SessionStatus = 'active' | 'evaluating' | 'completed' | 'expired' | 'failed';
/** Why a session stopped taking messages. `ended` and `max-exchanges` complete; the others expire. */
export type EndReason = 'ended' | 'max-exchanges' | 'idle' | 'max-duration';

export interface TranscriptTurn {
  role: 'user' | 'assistant';
  content: string;
  at: string;
}

export interface SessionLimits {
  idleTimeoutMs: number;
  maxDurationMs: number;
  maxExchanges: number;
}

export function limitsOf(scenario: Scenario): SessionLimits {
  return {
    idleTimeoutMs: scenario.limits.idleTimeoutSeconds * 1000,
    maxDurationMs: scenario.limits.maxDurationSeconds * 1000,
    maxExchanges: scenario.limits.maxExchanges,
  };
}

/** The state of a session that decides whether it takes another message. */
export interface SessionGate {
  status: SessionStatus;
  exchanges: number;
  limits: SessionLimits;
  startedAtMs: number;
  lastActivityAtMs: number;
}

/**
 * Why a session refuses a message at `now`, or undefined when it takes one. Time limits are
 * checked here too, so a message that arrives after the idle or duration limit but before the
 * orchestration's timer episode ran is refused like one after it.
 */
export function refusalOf(s: SessionGate, now: number): string | undefined {
  if (s.status !== 'active') return `The session is ${s.status}.`;
  if (s.exchanges >= s.limits.maxExchanges) return `The session reached its limit of ${s.limits.maxExchanges} exchanges.`;
  if (now >= s.startedAtMs + s.limits.maxDurationMs) return 'The session reached its maximum duration.';
  if (now >= s.lastActivityAtMs + s.limits.idleTimeoutMs) return 'The session expired after being idle.';
  return undefined;
}

/** Final status of a closed session once its evaluation finished. */
export function finalStatusOf(reason: EndReason, evaluationFailed: boolean): SessionStatus {
  if (evaluationFailed) return 'failed';
  return reason === 'ended' || reason === 'max-exchanges' ? 'completed' : 'expired';
}
