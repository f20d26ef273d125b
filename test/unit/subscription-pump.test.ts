import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_PUMP_POLL_INTERVAL_MS,
  ensureTopology,
  LocalServiceBus,
  MAX_DELIVERY_COUNT_EXCEEDED,
  type ReceivedMessage,
  startSubscriptionPump,
  type SubscriptionPump,
} from '../../src/adapters/local/service-bus';
import { openBus, tempDir, topology, VirtualClock } from '../helpers/local-bus';

const TOPIC = topology.topic.name;
const SUB = 'meridian-eastus-indexer';
const MAX = topology.subscriptions[0]?.maxDeliveryCount as number;

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('startSubscriptionPump', () => {
  let clock: VirtualClock;
  let bus: LocalServiceBus;
  let tmp: ReturnType<typeof tempDir>;
  let pump: SubscriptionPump | undefined;

  beforeEach(async () => {
    tmp = tempDir();
    clock = new VirtualClock();
    bus = openBus(tmp.dir, clock);
    await ensureTopology(bus, topology);
  });
  afterEach(async () => {
    await pump?.stop();
    pump = undefined;
    await bus.close();
    tmp.cleanup();
  });

  const publish = (n: number, prefix = 'm'): Promise<void> =>
    bus.publishBatch(
      TOPIC,
      Array.from({ length: n }, (_, i) => ({
        messageId: `${prefix}${i}`,
        body: { i },
        applicationProperties: { targetRegion: 'us' },
      })),
    );

  it('has a low idle poll interval for npm start', () => {
    expect(DEFAULT_PUMP_POLL_INTERVAL_MS).toBeLessThanOrEqual(50);
  });

  it('hands every message to the handler once and completes it', async () => {
    const seen: string[] = [];
    pump = startSubscriptionPump({ bus, topic: TOPIC, subscription: SUB, handler: (m) => void seen.push(m.messageId) });
    await publish(50);
    await vi.waitFor(async () => expect((await bus.stats(TOPIC, SUB)).active).toBe(0), { timeout: 5000, interval: 5 });
    expect(seen.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`).sort());
  });

  it('abandons on throw until the message is dead-lettered after maxDeliveryCount deliveries', async () => {
    const deliveries: number[] = [];
    const errors: string[] = [];
    pump = startSubscriptionPump({
      bus,
      topic: TOPIC,
      subscription: SUB,
      handler: (m) => {
        deliveries.push(m.deliveryCount);
        throw new Error('poison');
      },
      onError: (e, ctx) => errors.push(`${ctx.phase}:${e.message}`),
    });
    await publish(1, 'poison');
    await vi.waitFor(async () => expect((await bus.stats(TOPIC, SUB)).deadLettered).toBe(1), { timeout: 5000, interval: 5 });
    await pump.stop();
    expect(deliveries).toEqual([1, 2, 3, 4, 5].slice(0, MAX));
    expect(errors).toEqual(Array.from({ length: MAX }, () => 'handler:poison'));
    const [dead] = await bus.receive(TOPIC, SUB, { deadLetter: true });
    expect(dead?.deadLetterReason).toBe(MAX_DELIVERY_COUNT_EXCEEDED);
  });

  it('never runs more than maxConcurrent handlers at once', async () => {
    let running = 0;
    let peak = 0;
    pump = startSubscriptionPump({
      bus,
      topic: TOPIC,
      subscription: SUB,
      maxConcurrent: 3,
      handler: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
      },
    });
    await publish(30);
    await vi.waitFor(async () => expect((await bus.stats(TOPIC, SUB)).active).toBe(0), { timeout: 5000, interval: 5 });
    expect(peak).toBe(3);
  });

  it('stop() waits for in-flight handlers and settles them', async () => {
    const gate = deferred();
    const started = deferred();
    pump = startSubscriptionPump({
      bus,
      topic: TOPIC,
      subscription: SUB,
      handler: async () => {
        started.resolve();
        await gate.promise;
      },
    });
    await publish(1);
    await started.promise;
    let stoppedAt = false;
    const stopping = pump.stop().then(() => (stoppedAt = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(stoppedAt).toBe(false);
    gate.resolve();
    await stopping;
    expect(await bus.stats(TOPIC, SUB)).toEqual({ active: 0, deadLettered: 0, locked: 0 });
    await publish(1, 'after-stop');
    await new Promise((r) => setTimeout(r, DEFAULT_PUMP_POLL_INTERVAL_MS * 3));
    expect((await bus.stats(TOPIC, SUB)).active).toBe(1); // nothing consumes after stop
  });

  it("batchHandler ('many'): all completed on success, all abandoned on throw", async () => {
    const batches: string[][] = [];
    let fail = true;
    pump = startSubscriptionPump({
      bus,
      topic: TOPIC,
      subscription: SUB,
      maxBatchSize: 10,
      batchHandler: (ms: ReceivedMessage[]) => {
        batches.push(ms.map((m) => `${m.messageId}#${m.deliveryCount}`));
        if (fail) {
          fail = false;
          throw new Error('batch failed');
        }
      },
    });
    await publish(10);
    await vi.waitFor(async () => expect((await bus.stats(TOPIC, SUB)).active).toBe(0), { timeout: 5000, interval: 5 });
    expect(batches[0]).toHaveLength(10);
    expect(batches[0]?.every((x) => x.endsWith('#1'))).toBe(true);
    const second = batches.slice(1).flat();
    expect(second.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}#2`).sort());
  });

  it('renews the lock of a handler that runs past half its lock', async () => {
    const gate = deferred();
    const started = deferred();
    let lockedUntil = 0;
    pump = startSubscriptionPump({
      bus,
      topic: TOPIC,
      subscription: SUB,
      clock,
      lockRenewalCheckMs: 10,
      handler: async (m) => {
        started.resolve();
        await gate.promise;
        lockedUntil = m.lockedUntilUtc.getTime();
      },
    });
    await publish(1);
    await started.promise;
    const lockMs = 60_000;
    const renewals = vi.spyOn(bus, 'renewLock');
    clock.advance(lockMs / 2 - 1);
    await new Promise((r) => setTimeout(r, 30));
    expect(renewals).not.toHaveBeenCalled(); // not yet at half the lock
    clock.advance(2); // virtual time: past half the lock
    await vi.waitFor(() => expect(renewals).toHaveBeenCalledTimes(1), { timeout: 2000, interval: 5 });
    await renewals.mock.results[0]?.value;
    clock.advance(lockMs / 2); // the original lock would have expired by now
    expect(await bus.receive(TOPIC, SUB)).toEqual([]); // still locked: renewed
    gate.resolve();
    await pump.stop();
    expect(lockedUntil).toBeGreaterThan(Date.UTC(2025, 0, 1) + lockMs);
    expect((await bus.stats(TOPIC, SUB)).active).toBe(0);
  });
});

describe('startSubscriptionPump with a failing bus', () => {
  it('reports receive failures and backs off instead of spinning', async () => {
    vi.useFakeTimers();
    const errors: string[] = [];
    let receives = 0;
    const pump = startSubscriptionPump({
      bus: {
        receive: async () => {
          receives++;
          throw new Error('bus down');
        },
        complete: async () => undefined,
        abandon: async () => undefined,
      },
      topic: 't',
      subscription: 's',
      pollIntervalMs: 5,
      handler: () => undefined,
      onError: (e, ctx) => errors.push(`${ctx.phase}:${e.message}`),
    });
    try {
      await vi.advanceTimersByTimeAsync(200);
      await pump.stop();
    } finally {
      vi.useRealTimers();
    }
    // Sleeps of 10, 20, 40, 80 ms …: receives at 0, 10, 30, 70, 150 ms, then stop — not 40.
    expect(receives).toBe(5);
    expect(errors.every((e) => e === 'receive:bus down')).toBe(true);
  });

  it('refuses to start without exactly one handler', () => {
    const bus = { receive: async () => [], complete: async () => undefined, abandon: async () => undefined };
    expect(() => startSubscriptionPump({ bus, topic: 't', subscription: 's' })).toThrow(TypeError);
  });
});
