/**
 * The subscription pump: what the Functions host does for a `serviceBusTopic` trigger.
 * It polls the bus, runs the handler per message (or per batch for cardinality 'many'),
 * completes on success and abandons on a throw (so the delivery count rises and a poison
 * message ends in the dead-letter queue), keeps at most `maxConcurrent` handlers running,
 * renews locks of long-running handlers, and stops cleanly.
 *
 * Polling is adaptive: while receives return messages it polls again at once; when the
 * subscription is empty it waits `pollIntervalMs`, and a publish in the same process
 * wakes it early.
 */
import { ensureError } from '../../../domain/errors';
import type { Clock } from '../../../ports/clock';
import type { ReceivedMessage, SubscriptionReceiver } from './local-service-bus';

/** Idle poll interval (ms) used when none is given — what `npm start` runs with. */
export const DEFAULT_PUMP_POLL_INTERVAL_MS = 20;
/** Concurrent handler invocations (or batches) when none is given. */
export const DEFAULT_PUMP_MAX_CONCURRENT = 16;
/** Messages per batch for `batchHandler` when none is given (the Functions default is 32... up to 100). */
export const DEFAULT_PUMP_MAX_BATCH_SIZE = 32;
/** Most messages taken by one receive for single-message handlers. */
const MAX_PER_RECEIVE = 64;

export type PumpPhase = 'receive' | 'handler' | 'complete' | 'abandon' | 'renewLock';

export interface SubscriptionPumpOptions {
  bus: SubscriptionReceiver;
  topic: string;
  /** Subscription name; `<name>/$DeadLetterQueue` pumps its dead-letter queue. */
  subscription: string;
  /** Cardinality 'one': called once per message. Give exactly one of handler / batchHandler. */
  handler?: (message: ReceivedMessage) => unknown;
  /** Cardinality 'many': called with a batch; all completed on success, all abandoned on a throw. */
  batchHandler?: (messages: ReceivedMessage[]) => unknown;
  /** Concurrent handler invocations (batches in 'many' mode). Default DEFAULT_PUMP_MAX_CONCURRENT. */
  maxConcurrent?: number;
  /** Batch size in 'many' mode. Default DEFAULT_PUMP_MAX_BATCH_SIZE. */
  maxBatchSize?: number;
  /** Wait when the subscription is empty. Default DEFAULT_PUMP_POLL_INTERVAL_MS. */
  pollIntervalMs?: number;
  /** The bus's clock, for lock renewal decisions (default: system time). */
  clock?: Clock;
  /** Renew locks of handlers still running at half their lock (default true when the bus can). */
  autoRenewLock?: boolean;
  /** How often (real ms) running handlers are checked for lock renewal. Default 1000. */
  lockRenewalCheckMs?: number;
  /** Called for every failure (handler throws, settle failures, receive errors). Never throws back. */
  onError?: (error: Error, context: { phase: PumpPhase; messages: readonly ReceivedMessage[] }) => void;
}

export interface SubscriptionPump {
  /** Stops polling and resolves once every in-flight handler has finished and been settled. */
  stop(): Promise<void>;
}

const systemClock: Clock = { now: () => Date.now() };

interface InFlight {
  messages: ReceivedMessage[];
  /** Lock span at receipt, so renewal happens at half of it. */
  spans: number[];
}

/** Starts a pump; it runs until `stop()`. */
export function startSubscriptionPump(options: SubscriptionPumpOptions): SubscriptionPump {
  const { bus, topic, subscription, handler, batchHandler } = options;
  if ((handler === undefined) === (batchHandler === undefined)) {
    throw new TypeError('startSubscriptionPump: give exactly one of handler or batchHandler');
  }
  const maxConcurrent = Math.max(1, options.maxConcurrent ?? DEFAULT_PUMP_MAX_CONCURRENT);
  const maxBatchSize = Math.max(1, options.maxBatchSize ?? DEFAULT_PUMP_MAX_BATCH_SIZE);
  const pollIntervalMs = Math.max(1, options.pollIntervalMs ?? DEFAULT_PUMP_POLL_INTERVAL_MS);
  const clock = options.clock ?? systemClock;
  const renew = options.autoRenewLock !== false && typeof bus.renewLock === 'function';

  let stopped = false;
  let wake: (() => void) | undefined;
  let woken = false;
  const inflight = new Set<InFlight>();
  const running = new Set<Promise<void>>();

  const report = (err: unknown, phase: PumpPhase, messages: readonly ReceivedMessage[]): void => {
    try {
      options.onError?.(ensureError(err), { phase, messages });
    } catch {
      // an error reporter must not stop the pump
    }
  };

  const wakeUp = (): void => {
    woken = true;
    const w = wake;
    wake = undefined;
    w?.();
  };

  /** Sleeps up to `ms`, or until woken (publish, a freed slot, stop). */
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (woken || stopped) {
        woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        woken = false;
        resolve();
      };
    });

  const unsubscribe = bus.onPublished?.(topic, wakeUp);

  const settle = async (item: InFlight, ok: boolean): Promise<void> => {
    for (const m of item.messages) {
      try {
        await (ok ? bus.complete(m.lockToken) : bus.abandon(m.lockToken));
      } catch (err) {
        report(err, ok ? 'complete' : 'abandon', [m]);
      }
    }
  };

  const dispatch = (messages: ReceivedMessage[]): void => {
    const now = clock.now();
    const item: InFlight = { messages, spans: messages.map((m) => m.lockedUntilUtc.getTime() - now) };
    inflight.add(item);
    const p = (async () => {
      let ok = true;
      try {
        if (batchHandler) await batchHandler(messages);
        else await (handler as (m: ReceivedMessage) => unknown)(messages[0] as ReceivedMessage);
      } catch (err) {
        ok = false;
        report(err, 'handler', messages);
      }
      await settle(item, ok);
    })().finally(() => {
      inflight.delete(item);
      running.delete(p);
      wakeUp();
    });
    running.add(p);
  };

  const renewTick = async (): Promise<void> => {
    const now = clock.now();
    for (const item of inflight) {
      for (let i = 0; i < item.messages.length; i++) {
        const m = item.messages[i] as ReceivedMessage;
        const span = item.spans[i] ?? 0;
        if (span > 0 && m.lockedUntilUtc.getTime() - now <= span / 2) {
          try {
            m.lockedUntilUtc = await (bus.renewLock as (t: string) => Promise<Date>)(m.lockToken);
          } catch (err) {
            report(err, 'renewLock', [m]);
          }
        }
      }
    }
  };
  const renewTimer = renew
    ? setInterval(
        () => {
          if (inflight.size) void renewTick();
        },
        Math.max(10, options.lockRenewalCheckMs ?? 1000),
      )
    : undefined;
  renewTimer?.unref();

  /** Consecutive receive failures: back off (up to 5 s) instead of reporting every poll. */
  let failures = 0;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const free = maxConcurrent - inflight.size;
      if (free <= 0) {
        await sleep(pollIntervalMs);
        continue;
      }
      let messages: ReceivedMessage[];
      try {
        messages = await bus.receive(topic, subscription, {
          maxMessages: batchHandler ? maxBatchSize : Math.min(free, MAX_PER_RECEIVE),
        });
      } catch (err) {
        report(err, 'receive', []);
        failures++;
        await sleep(Math.min(5000, pollIntervalMs * 2 ** Math.min(failures, 12)));
        continue;
      }
      failures = 0;
      if (messages.length === 0) {
        await sleep(pollIntervalMs);
        continue;
      }
      if (batchHandler) dispatch(messages);
      else for (const m of messages) dispatch([m]);
      // Let the handlers start before the next receive.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  const looping = loop();

  return {
    async stop(): Promise<void> {
      if (!stopped) {
        stopped = true;
        unsubscribe?.();
        wakeUp();
      }
      await looping;
      while (running.size) await Promise.allSettled([...running]);
      if (renewTimer) clearInterval(renewTimer);
    },
  };
}
