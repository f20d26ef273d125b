/**
 * Coaching sessions (issue 8). The `sessions` container is the source of truth: transcript,
 * exchange count and status, every change written with If-Match on the etag read. The
 * `sessionLifecycle` orchestration owns time (idle timeout, maximum duration) and the close:
 * it is told of each exchange by an event that carries only the exchange number, never text.
 *
 * An exchange is answered on the request path: read the session, call the persona through
 * the chat gateway, append both turns with If-Match, record usage, queue the event. Nothing
 * waits for the orchestrator to replay; a message that arrives after a limit but before the
 * orchestrator's timer ran is refused by `refusalOf` from the document alone.
 */
import { randomUUID } from 'node:crypto';
import type { ChatMessage } from '../domain/chat';
import {
  finalStatusOf,
  limitsOf,
  refusalOf,
  type EndReason,
  type Scenario,
  type SessionLimits,
  type SessionStatus,
  type TranscriptTurn,
} from '../domain/coaching';
import { AppError, isAppError } from '../domain/errors';
import type { EvaluationResult } from '../domain/evaluation';
import { instanceIdFor } from '../domain/instance-ids';
import type { Principal } from '../domain/tenancy';
import type { ChatModel } from '../ports/chat-model';
import type { Clock } from '../ports/clock';
import type { DocumentStore, Item, Stored } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import type { BlobStore } from '../ports/blob-store';
import type { Orchestrations } from '../ports/orchestrations';
import type { Config } from '../config';
import { createEvaluations, EVALUATIONS_CONTAINER, type EvaluationDoc } from './evaluations';
import { documentWrites, type OptimisticUpdater } from './optimistic-update';
import { recordUsage } from './usage-events';

export const SESSIONS_CONTAINER = 'sessions';
export const SESSION_ORCHESTRATOR = 'sessionLifecycle';
/** The one external event name of a session orchestration (one pending waiter at a time). */
export const SESSION_EVENT = 'session';
export const MAX_MESSAGE_CHARS = 4000;
const REPLY_MAX_TOKENS = 300;

export interface SessionDoc extends Item {
  tenantId: string;
  userId: string;
  scenario: string;
  persona: string;
  rubric: string;
  status: SessionStatus;
  exchanges: number;
  limits: SessionLimits;
  transcript: TranscriptTurn[];
  startedAtMs: number;
  lastActivityAtMs: number;
  endedAtMs?: number;
  endReason?: EndReason;
  evaluationId?: string;
  evaluation?: EvaluationResult;
  usage: { totalTokens: number };
  requestId: string;
  /** Why the session `failed` (an activity's error message); never shown to the client. */
  error?: string;
}

/** What the orchestration gets: ids and numbers, no text. */
export interface SessionLifecycleInput {
  sessionId: string;
  tenantId: string;
  startedAtMs: number;
  limits: SessionLimits;
}

/** The session event: an exchange was recorded (its number), or the owner ended the session. */
export type SessionSignal = { kind: 'exchange'; exchange: number } | { kind: 'end' };

export interface SessionView {
  sessionId: string;
  status: SessionStatus;
  scenario: string;
  exchanges: number;
  startedAt: string;
  endedAt?: string;
  evaluation?: EvaluationResult;
  usage: { totalTokens: number };
}

export interface SessionDeps {
  config: Pick<Config, 'region' | 'scenarios' | 'rubrics'>;
  documents: DocumentStore;
  clock: Clock;
  chat: ChatModel;
  logger: Logger;
  /** The boundary's blob account: the usage outbox (usage-events.ts). */
  blobs?: BlobStore;
  /** Changes a session document in turn; default the process's queue. */
  updater?: OptimisticUpdater;
}

export interface CallContext {
  requestId: string;
  invocationId: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** A session's one evaluation (and the instance id of its `evaluation` sub-orchestration). */
const evaluationIdOf = (sessionId: string): string => `${sessionId}:evaluation`;
/** Bound on the stored failure reason. */
const MAX_ERROR_CHARS = 500;

export function createSessions(deps: SessionDeps) {
  const { documents, clock } = deps;
  const updater = deps.updater ?? documentWrites;
  const evaluations = createEvaluations(deps);

  async function owned(principal: Principal, sessionId: string): Promise<Stored<SessionDoc>> {
    const doc = await documents.read<SessionDoc>(SESSIONS_CONTAINER, principal.tenantId, sessionId);
    if (!doc || doc.userId !== principal.userId) throw new AppError('not_found', 'No such session.');
    return doc;
  }

  function scenarioOf(id: string): Scenario {
    const s = deps.config.scenarios.find((x) => x.id === id);
    if (!s) throw new AppError('validation_failed', `Unknown scenario '${id}'.`);
    return s;
  }

  function personaPrompt(doc: SessionDoc, text: string): ChatMessage[] {
    const scenario = scenarioOf(doc.scenario);
    const persona = scenario.personas.find((p) => p.id === doc.persona) ?? scenario.personas[0];
    return [
      { role: 'system', content: `${persona?.instructions ?? ''}\n\nSituation: ${scenario.description}` },
      ...doc.transcript.map((t) => ({ role: t.role, content: t.content }) as ChatMessage),
      { role: 'user', content: text },
    ];
  }

  /**
   * Reads, changes and replaces a session with If-Match until it sticks.
   * @param change returns the new document, or undefined to leave it as it is.
   */
  async function update(
    tenantId: string,
    sessionId: string,
    change: (doc: Stored<SessionDoc>) => SessionDoc | undefined,
  ): Promise<{ doc: Stored<SessionDoc>; changed: boolean }> {
    return updater.run(
      `${SESSIONS_CONTAINER}/${tenantId}/${sessionId}`,
      async () => {
        const doc = await documents.read<SessionDoc>(SESSIONS_CONTAINER, tenantId, sessionId);
        if (!doc) throw new AppError('not_found', 'No such session.');
        const next = change(doc);
        if (!next) return { doc, changed: false };
        return { doc: await documents.replace(SESSIONS_CONTAINER, next, { ifMatch: doc._etag }), changed: true };
      },
      'The session',
    );
  }

  return {
    /** POST /api/sessions: stores the session, then starts its orchestration. */
    async start(
      principal: Principal,
      request: { scenario: string; persona?: string | undefined },
      ctx: CallContext,
      orchestrations: Orchestrations,
    ): Promise<{ sessionId: string; status: 'active'; expiresAt: string }> {
      const scenario = scenarioOf(request.scenario);
      const persona =
        request.persona === undefined ? scenario.personas[0] : scenario.personas.find((p) => p.id === request.persona);
      if (!persona) throw new AppError('validation_failed', `Scenario '${scenario.id}' has no persona '${request.persona}'.`);
      const now = clock.now();
      const limits = limitsOf(scenario);
      const sessionId = instanceIdFor(deps.config.region, randomUUID().replace(/-/g, ''));
      const doc: SessionDoc = {
        id: sessionId,
        tenantId: principal.tenantId,
        userId: principal.userId,
        scenario: scenario.id,
        persona: persona.id,
        rubric: scenario.rubric,
        status: 'active',
        exchanges: 0,
        limits,
        transcript: [],
        startedAtMs: now,
        lastActivityAtMs: now,
        usage: { totalTokens: 0 },
        requestId: ctx.requestId,
      };
      await documents.create(SESSIONS_CONTAINER, doc);
      const input: SessionLifecycleInput = { sessionId, tenantId: principal.tenantId, startedAtMs: now, limits };
      try {
        await orchestrations.start(SESSION_ORCHESTRATOR, sessionId, input);
      } catch (err) {
        await documents.patch(SESSIONS_CONTAINER, principal.tenantId, sessionId, [
          { op: 'set', path: '/status', value: 'failed' },
        ]);
        throw new AppError('unavailable', 'The session could not be started; try again.', { cause: err, retryAfterSeconds: 1 });
      }
      return { sessionId, status: 'active', expiresAt: iso(now + limits.maxDurationMs) };
    },

    /** POST /api/sessions/{id}/messages: the persona's reply, recorded; 409 when closed or capped. */
    async message(
      principal: Principal,
      sessionId: string,
      text: string,
      ctx: CallContext,
      orchestrations: Orchestrations,
    ): Promise<{ reply: string; exchange: number }> {
      const doc = await owned(principal, sessionId);
      const refusal = refusalOf(gateOf(doc), clock.now());
      if (refusal) throw new AppError('conflict', refusal);
      const completion = await deps.chat.complete({
        messages: personaPrompt(doc, text),
        maxTokens: REPLY_MAX_TOKENS,
        temperature: 0.7,
      });
      // The model was called: its tokens count whether or not the exchange can still be stored.
      await recordUsage(
        deps,
        { ...ctx, tenantId: principal.tenantId, userId: principal.userId, source: 'session' },
        1,
        completion,
      );
      let refused: string | undefined;
      const { doc: stored } = await update(principal.tenantId, sessionId, (current) => {
        const at = clock.now();
        refused = refusalOf(gateOf(current), at);
        if (refused) return undefined;
        return {
          ...current,
          exchanges: current.exchanges + 1,
          lastActivityAtMs: at,
          transcript: [
            ...current.transcript,
            { role: 'user', content: text, at: iso(at) },
            { role: 'assistant', content: completion.text, at: iso(at) },
          ],
          usage: { totalTokens: current.usage.totalTokens + completion.usage.totalTokens },
        };
      });
      if (refused) throw new AppError('conflict', refused);
      const signal: SessionSignal = { kind: 'exchange', exchange: stored.exchanges };
      try {
        await orchestrations.raise(sessionId, SESSION_EVENT, signal);
      } catch (err) {
        // The exchange is stored (the source of truth); the orchestration's own timers and the
        // close activity re-read the document, so a lost notification delays nothing but an
        // exchange-cap close until the idle timer.
        deps.logger.warn('session event not delivered', { sessionId, err });
      }
      return { reply: completion.text, exchange: stored.exchanges };
    },

    /** POST /api/sessions/{id}/end: closes the session at once (409 if not active) and tells the orchestration. */
    async end(
      principal: Principal,
      sessionId: string,
      orchestrations: Orchestrations,
    ): Promise<{ sessionId: string; status: 'evaluating' }> {
      await owned(principal, sessionId);
      let refused: string | undefined;
      await update(principal.tenantId, sessionId, (current) => {
        if (current.status !== 'active') {
          refused = `The session is ${current.status}.`;
          return undefined;
        }
        return { ...current, status: 'evaluating', endedAtMs: clock.now(), endReason: 'ended' };
      });
      if (refused) throw new AppError('conflict', refused);
      const signal: SessionSignal = { kind: 'end' };
      await orchestrations.raise(sessionId, SESSION_EVENT, signal);
      return { sessionId, status: 'evaluating' };
    },

    async get(principal: Principal, sessionId: string): Promise<SessionView> {
      return viewOf(await owned(principal, sessionId));
    },

    // ------------------------------------------------------------- activities

    /**
     * Closes a session for `reason` and creates its evaluation document. Idempotent: a session
     * already closed keeps its first reason. An `idle` close is skipped (`closed: false`) when
     * an exchange was stored since the orchestration last heard of one.
     */
    async close(input: {
      sessionId: string;
      tenantId: string;
      reason: EndReason;
    }): Promise<{ closed: boolean; evaluationId?: string }> {
      const { doc } = await update(input.tenantId, input.sessionId, (current) => {
        if (current.status !== 'active') return undefined;
        const now = clock.now();
        if (input.reason === 'idle' && now < current.lastActivityAtMs + current.limits.idleTimeoutMs) return undefined;
        return { ...current, status: 'evaluating', endedAtMs: now, endReason: input.reason };
      });
      if (doc.status === 'active') return { closed: false };
      const evaluationId = evaluationIdOf(doc.id);
      await evaluations.createForSession(doc, evaluationId);
      if (doc.evaluationId !== evaluationId) {
        await update(input.tenantId, input.sessionId, (current) =>
          current.evaluationId ? undefined : { ...current, evaluationId },
        );
      }
      return { closed: true, evaluationId };
    },

    /**
     * Stores the evaluation's result on the session and its final status. Idempotent: a
     * session no longer `evaluating` is left as it is.
     */
    async finish(input: { sessionId: string; tenantId: string; evaluationId: string }): Promise<{ status: SessionStatus }> {
      const evaluation = await documents.read<EvaluationDoc>(EVALUATIONS_CONTAINER, input.tenantId, input.evaluationId);
      const failed = !evaluation || evaluation.status !== 'completed' || !evaluation.result;
      const { doc } = await update(input.tenantId, input.sessionId, (current) => {
        if (current.status !== 'evaluating') return undefined;
        return {
          ...current,
          status: finalStatusOf(current.endReason ?? 'ended', failed),
          ...(evaluation?.result ? { evaluation: evaluation.result } : {}),
          usage: { totalTokens: current.usage.totalTokens + (evaluation?.usage?.totalTokens ?? 0) },
        };
      });
      return { status: doc.status };
    },

    /**
     * The orchestration's failure path: a session still `active` or `evaluating` becomes
     * `failed` (ended now unless it had ended), and so does its evaluation if one was created
     * and is still running (evaluations.fail). Idempotent: a completed, expired or failed
     * session keeps its status; an absent one is reported `failed`.
     */
    async fail(input: { sessionId: string; tenantId: string; error: string }): Promise<{ status: SessionStatus }> {
      let doc: SessionDoc;
      try {
        ({ doc } = await update(input.tenantId, input.sessionId, (current) => {
          if (current.status !== 'active' && current.status !== 'evaluating') return undefined;
          return {
            ...current,
            status: 'failed',
            endedAtMs: current.endedAtMs ?? clock.now(),
            error: input.error.slice(0, MAX_ERROR_CHARS),
          };
        }));
      } catch (err) {
        if (!isAppError(err, 'not_found')) throw err;
        return { status: 'failed' };
      }
      if (doc.status === 'failed') {
        await evaluations.fail({
          evaluationId: doc.evaluationId ?? evaluationIdOf(doc.id),
          tenantId: input.tenantId,
          error: input.error,
        });
      }
      deps.logger.error('session failed', { sessionId: input.sessionId, status: doc.status, error: input.error });
      return { status: doc.status };
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;

function gateOf(doc: SessionDoc) {
  return {
    status: doc.status,
    exchanges: doc.exchanges,
    limits: doc.limits,
    startedAtMs: doc.startedAtMs,
    lastActivityAtMs: doc.lastActivityAtMs,
  };
}

function viewOf(doc: SessionDoc): SessionView {
  return {
    sessionId: doc.id,
    status: doc.status,
    scenario: doc.scenario,
    exchanges: doc.exchanges,
    startedAt: iso(doc.startedAtMs),
    ...(doc.endedAtMs !== undefined ? { endedAt: iso(doc.endedAtMs) } : {}),
    ...(doc.evaluation ? { evaluation: doc.evaluation } : {}),
    usage: { totalTokens: doc.usage.totalTokens },
  };
}
