/**
 * `sessionLifecycle`: owns a coaching session's time and close (issue 8). Deterministic
 * (CONVENTIONS.md item 5, lint-enforced): time from `currentUtcDateTime`, I/O in activities.
 *
 * Waits, in a loop, on whichever comes first:
 * - the `session` event: `{kind:'exchange', exchange}` (an exchange was stored; the idle timer
 *   restarts; reaching the cap closes with `max-exchanges`) or `{kind:'end'}` (closed `ended`);
 * - a timer at min(last activity + idle timeout, start + maximum duration): closes with `idle`
 *   or `max-duration` (the session expires). The close activity re-checks the document, so an
 *   idle close loses to an exchange stored just before it (the loop then goes on).
 * Then the `evaluation` sub-orchestration scores the transcript, `finishSession` stores the
 * result and final status, and the orchestration completes. Only one event waiter is pending
 * at a time (reused across timer wake-ups) so no event is handed to a forgotten waiter.
 *
 * Activities and the sub-orchestration are called with CALL_RETRY. When one still fails,
 * `failSession` marks the session `failed` (and its evaluation, if still running) so it never
 * stays `active` or `evaluating`, and the orchestration completes with `status: 'failed'`.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import type { SessionLifecycleInput, SessionSignal } from '../../src/app/sessions';
import type { EndReason } from '../../src/domain/coaching';
import { dateAtEpochMs } from '../../src/domain/time';
import { CALL_RETRY, failureReason } from './retry-policy';

/** Must equal SESSION_EVENT of src/app/sessions.ts (a value import would pull node modules in here). */
const SESSION_EVENT = 'session';

export function* sessionLifecycle(context: OrchestrationContext): Generator<df.Task, unknown, unknown> {
  const input = context.df.getInput() as SessionLifecycleInput;
  const ids = { sessionId: input.sessionId, tenantId: input.tenantId };
  const deadline = input.startedAtMs + input.limits.maxDurationMs;
  let lastActivity = input.startedAtMs;
  let exchanges = 0;
  let signal = context.df.waitForExternalEvent(SESSION_EVENT);
  let reason: EndReason | undefined;
  let evaluationId: string | undefined;

  try {
    while (evaluationId === undefined) {
      const idleAt = lastActivity + input.limits.idleTimeoutMs;
      const wakeAt = Math.min(idleAt, deadline);
      const timer = context.df.createTimer(dateAtEpochMs(wakeAt));
      const winner = yield context.df.Task.any([signal, timer]);
      if (winner === signal) {
        timer.cancel();
        const s = signal.result as SessionSignal;
        signal = context.df.waitForExternalEvent(SESSION_EVENT);
        lastActivity = context.df.currentUtcDateTime.getTime();
        if (s.kind === 'end') reason = 'ended';
        else {
          exchanges = Math.max(exchanges, s.exchange);
          if (exchanges >= input.limits.maxExchanges) reason = 'max-exchanges';
          else continue;
        }
      } else {
        reason = wakeAt >= deadline ? 'max-duration' : 'idle';
      }
      const closed = (yield context.df.callActivityWithRetry('closeSession', CALL_RETRY, { ...ids, reason })) as {
        closed: boolean;
        evaluationId?: string;
      };
      if (closed.closed && closed.evaluationId) evaluationId = closed.evaluationId;
      else lastActivity = context.df.currentUtcDateTime.getTime();
    }

    context.df.setCustomStatus({ stage: 'evaluating' });
    const evaluation = (yield context.df.callSubOrchestratorWithRetry(
      'evaluation',
      CALL_RETRY,
      { evaluationId, tenantId: input.tenantId },
      evaluationId,
    )) as {
      status: string;
      overall: number | null;
    };
    const finished = (yield context.df.callActivityWithRetry('finishSession', CALL_RETRY, { ...ids, evaluationId })) as {
      status: string;
    };
    return { status: finished.status, reason, overall: evaluation.overall };
  } catch (err) {
    const error = failureReason(err);
    context.df.setCustomStatus({ stage: 'failed' });
    const failed = (yield context.df.callActivityWithRetry('failSession', CALL_RETRY, { ...ids, error })) as {
      status: string;
    };
    return { status: failed.status, reason, overall: null, error };
  }
}

df.app.orchestration('sessionLifecycle', sessionLifecycle);
