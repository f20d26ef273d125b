/**
 * The model gateway: one `ChatModel` over the chat deployments of this process's boundary.
 *
 * Policy (issue 6):
 * - Candidates in order: the serving region's deployments (by priority), then the other
 *   regions of the same boundary (by priority, then configuration order). Deployments of
 *   another boundary are refused at construction, so failover can never cross one.
 * - 429: the deployment is throttled until its `retry-after-ms`/`retry-after` (1 s when the
 *   response names none) and the next candidate is tried at once.
 * - 5xx, timeout, connection error: a failure for the deployment's circuit breaker (opens
 *   after `failureThreshold` consecutive failures for `openMs`; then one half-open probe:
 *   success closes it, failure re-opens it) and the next candidate is tried.
 * - Other errors (400 content filter, misconfiguration) are returned as they are: another
 *   deployment would answer the same.
 * - Nothing left: 429 `rate_limited` with Retry-After = the earliest end of a throttle, when
 *   one is throttled; else 503 `model_unavailable` (Retry-After = the earliest circuit probe).
 * - Streams fail over only before their first delta; a failure after it propagates.
 *
 * State is per process (like the SDK's own retry state); each regional app learns throttles
 * from its own calls, which is what Azure OpenAI's per-deployment quotas need.
 */
import type { ChatCompletion, ChatRequest, ChatStreamEvent } from '../domain/chat';
import { AppError, isAppError } from '../domain/errors';
import { modelFailureOf } from '../domain/model-errors';
import type { ChatModel } from '../ports/chat-model';
import type { Clock } from '../ports/clock';

export interface ModelDeployment {
  region: string;
  boundary: string;
  /** The deployment name (unique with its region). */
  deployment: string;
  /** 1 is preferred. */
  priority: number;
  chat: ChatModel;
}

export interface BreakerOptions {
  /** Consecutive transient failures that open the circuit (default 3). */
  failureThreshold?: number;
  /** How long an open circuit refuses calls before one probe (default 30 s). */
  openMs?: number;
}

export interface ModelGatewayOptions {
  deployments: readonly ModelDeployment[];
  servingRegion: string;
  boundary: string;
  clock: Clock;
  breaker?: BreakerOptions;
  /** Throttle time when a 429 names none (default 1000 ms). */
  defaultRetryAfterMs?: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface DeploymentStatus {
  region: string;
  deployment: string;
  priority: number;
  /** Epoch ms until which the deployment is throttled (absent when it is not). */
  throttledUntil?: number;
  circuit: CircuitState;
  consecutiveFailures: number;
  /** Epoch ms when an open circuit lets one probe through. */
  openUntil?: number;
}

export interface ModelGateway extends ChatModel {
  /** Every deployment in candidate order with its throttle and circuit state (for health and tests). */
  status(): DeploymentStatus[];
  /**
   * Readiness for /api/health: resolves with a short detail when some deployment can take a
   * call now.
   * @throws AppError `model_unavailable` when every deployment is throttled or open.
   */
  check(): Promise<string>;
}

interface Slot {
  d: ModelDeployment;
  throttledUntil: number;
  failures: number;
  /** Closed when 0; open until this time; half-open after it. */
  openUntil: number;
  probing: boolean;
}

export function createModelGateway(options: ModelGatewayOptions): ModelGateway {
  const { clock, boundary, servingRegion } = options;
  const failureThreshold = options.breaker?.failureThreshold ?? 3;
  const openMs = options.breaker?.openMs ?? 30_000;
  const defaultRetryAfterMs = options.defaultRetryAfterMs ?? 1_000;
  if (failureThreshold < 1 || openMs < 0) throw new RangeError('breaker: failureThreshold ≥ 1 and openMs ≥ 0');

  const foreign = options.deployments.filter((d) => d.boundary !== boundary);
  if (foreign.length > 0) {
    throw new Error(
      `model gateway for boundary ${boundary} was given deployments of another boundary: ${foreign
        .map((d) => `${d.region}/${d.deployment} (${d.boundary})`)
        .join(', ')}`,
    );
  }
  const keys = new Set<string>();
  for (const d of options.deployments) {
    const key = `${d.region}/${d.deployment}`;
    if (keys.has(key)) throw new Error(`model gateway: deployment ${key} is listed twice`);
    keys.add(key);
  }

  // Stable order: serving region first, then priority, then configuration order.
  const slots: Slot[] = options.deployments
    .map((d, i) => ({ d, i }))
    .sort(
      (a, b) =>
        Number(b.d.region === servingRegion) - Number(a.d.region === servingRegion) || a.d.priority - b.d.priority || a.i - b.i,
    )
    .map(({ d }) => ({ d, throttledUntil: 0, failures: 0, openUntil: 0, probing: false }));

  type Admission = { slot: Slot; probe: boolean };

  /** Takes the slot if it can be called now; marks a half-open probe as in flight. */
  function admit(slot: Slot, now: number): Admission | undefined {
    if (slot.throttledUntil > now) return undefined;
    if (slot.openUntil === 0) return { slot, probe: false };
    if (slot.openUntil > now || slot.probing) return undefined;
    slot.probing = true;
    return { slot, probe: true };
  }

  function succeeded(a: Admission): void {
    a.slot.failures = 0;
    a.slot.openUntil = 0;
    if (a.probe) a.slot.probing = false;
  }

  function failed(a: Admission, err: unknown): 'next' | 'stop' {
    const failure = modelFailureOf(err);
    const now = clock.now();
    if (a.probe) a.slot.probing = false;
    switch (failure.kind) {
      case 'throttled':
        // A throttled deployment is up: a 429 neither opens nor closes its circuit, but a
        // probe that got one leaves it half-open for the next caller.
        a.slot.throttledUntil = now + (failure.retryAfterMs ?? defaultRetryAfterMs);
        return 'next';
      case 'transient':
        a.slot.failures += 1;
        if (a.probe || a.slot.failures >= failureThreshold) a.slot.openUntil = now + openMs;
        return 'next';
      case 'permanent':
        // The deployment answered; the request is at fault. Release a probe unchanged.
        return 'stop';
    }
  }

  function exhausted(): AppError {
    const now = clock.now();
    const throttled = slots.filter((s) => s.throttledUntil > now).map((s) => s.throttledUntil);
    if (throttled.length > 0) {
      const wait = Math.min(...throttled) - now;
      return new AppError('rate_limited', `Every model deployment of boundary ${boundary} is throttled.`, {
        retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
      });
    }
    const open = slots.filter((s) => s.openUntil > now).map((s) => s.openUntil);
    return new AppError('model_unavailable', `No model deployment of boundary ${boundary} can answer now.`, {
      ...(open.length > 0 ? { retryAfterSeconds: Math.max(1, Math.ceil((Math.min(...open) - now) / 1000)) } : {}),
    });
  }

  /** What the caller sees of a deployment's permanent error: its code and message, not our hints. */
  function surface(err: unknown): unknown {
    if (!isAppError(err)) return err;
    if (Object.keys(err.extensions).length === 0) return err;
    return new AppError(err.code, err.message, {
      cause: err,
      ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
    });
  }

  function* candidates(): Generator<Admission> {
    for (const slot of slots) {
      const a = admit(slot, clock.now());
      if (a) yield a;
    }
  }

  function aborted(request: ChatRequest): boolean {
    return request.signal?.aborted === true;
  }

  return {
    async complete(request: ChatRequest): Promise<ChatCompletion> {
      for (const a of candidates()) {
        try {
          const completion = await a.slot.d.chat.complete(request);
          succeeded(a);
          return completion;
        } catch (err) {
          if (aborted(request)) {
            if (a.probe) a.slot.probing = false;
            throw err;
          }
          if (failed(a, err) === 'stop') throw surface(err);
        }
      }
      throw exhausted();
    },

    async *stream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
      for (const a of candidates()) {
        let started = false;
        let settled = false;
        try {
          for await (const event of a.slot.d.chat.stream(request)) {
            if (event.type === 'done') {
              succeeded(a);
              settled = true;
            }
            started = true;
            yield event;
            if (settled) return;
          }
          // A stream that ends without `done` is a broken deployment.
          throw new AppError(
            'model_unavailable',
            `deployment ${a.slot.d.region}/${a.slot.d.deployment} ended its stream without an answer`,
            {
              extensions: { transient: true },
            },
          );
        } catch (err) {
          if (settled) throw err; // the consumer's own failure after the answer
          if (aborted(request)) {
            if (a.probe) a.slot.probing = false;
            throw err;
          }
          const next = failed(a, err);
          if (started || next === 'stop') throw surface(err);
        } finally {
          // The consumer stopped early (return()): release a probe without judging the deployment.
          if (!settled && a.probe && a.slot.probing) a.slot.probing = false;
        }
      }
      throw exhausted();
    },

    status(): DeploymentStatus[] {
      const now = clock.now();
      return slots.map((s) => ({
        region: s.d.region,
        deployment: s.d.deployment,
        priority: s.d.priority,
        ...(s.throttledUntil > now ? { throttledUntil: s.throttledUntil } : {}),
        circuit: s.openUntil === 0 ? 'closed' : s.openUntil > now ? 'open' : 'half-open',
        consecutiveFailures: s.failures,
        ...(s.openUntil > now ? { openUntil: s.openUntil } : {}),
      }));
    },

    async check(): Promise<string> {
      const now = clock.now();
      const ready = slots.filter((s) => s.throttledUntil <= now && s.openUntil <= now);
      if (ready.length === 0) throw exhausted();
      return `${ready.length}/${slots.length} deployments ready`;
    },
  };
}

/** What the gateway needs of a configured deployment (config/deployments.json). */
export interface ConfiguredDeployment {
  region: string;
  purpose: string;
  deployment: string;
  priority: number;
}

/**
 * The deployments of one purpose in one boundary — the only ones a gateway may be built from.
 * @param boundaryOf the boundary of a region (undefined for an unknown one, which is left out).
 */
export function deploymentsInBoundary<T extends ConfiguredDeployment>(
  deployments: readonly T[],
  boundaryOf: (region: string) => string | undefined,
  boundary: string,
  purpose: string,
): T[] {
  return deployments.filter((d) => d.purpose === purpose && boundaryOf(d.region) === boundary);
}
