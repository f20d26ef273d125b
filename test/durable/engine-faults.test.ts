/**
 * devhost's durable engine where the Durable Task framework's guarantees are easy to lose:
 * - an episode whose commit fails (SQLITE_BUSY past the busy timeout, a full disk) is retried
 *   from the stored history, as the framework abandons and redelivers a work item;
 * - an instance re-created under a terminal instance's id is a new execution: a late result of
 *   the old one is discarded (the framework discards messages of another ExecutionId);
 * - an event queued behind one that needs engine bookkeeping (a long timer's slice, a retry) is
 *   processed at once, not at the instance's next wake-up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurableEngine } from '../../devhost/durable/engine';
import { DurableStore } from '../../devhost/durable/store';
import { FunctionHost } from '../../devhost/host';
import { VirtualClock } from '../../devhost/virtual-clock';

const FIXTURE = path.resolve(__dirname, '../fixtures/durable-faults');
const calls = () => (globalThis as unknown as { __faultCalls: string[] }).__faultCalls ?? [];
let host: FunctionHost;
let dir: string;

beforeAll(async () => {
  host = new FunctionHost({ appDir: FIXTURE });
  await host.load([path.join(FIXTURE, 'app.js')]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'durable-faults-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('durable engine faults', () => {
  it('a failed episode commit is retried from the stored history: the activity runs and the instance completes', async () => {
    const logs: string[] = [];
    const store = new DurableStore(path.join(dir, 'busy.sqlite'));
    const original = store.appendHistory.bind(store);
    let failures = 1;
    store.appendHistory = (id, from, events) => {
      if (failures > 0 && id === 'Y') {
        failures--;
        throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      }
      original(id, from, events);
    };
    const engine = new DurableEngine({
      host,
      store,
      clock: new VirtualClock(Date.UTC(2026, 0, 1)),
      log: (_l, m) => logs.push(m),
    });
    engine.start();
    try {
      engine.startNew('waitThenCount', 'Y', null);
      await until(() => calls().includes('count:first'), 'the activity to run after the failed commit');
      expect(logs.some((l) => l.includes('database is locked'))).toBe(true);
      engine.raiseEvent('Y', 'go', 1);
      await until(() => engine.status('Y')?.runtimeStatus === 'Completed', 'Y completed');
      expect(engine.status('Y')?.output).toEqual({ a: 'first', e: 1 });
      expect(calls().filter((c) => c === 'count:first')).toHaveLength(1);
    } finally {
      await engine.stop();
      store.close();
    }
  });

  it('an instance re-created under a terminal one’s id never takes the old execution’s late activity result', async () => {
    const gates = () => (globalThis as unknown as { __faultGates: Map<string, () => void> }).__faultGates;
    const store = new DurableStore(path.join(dir, 'reuse.sqlite'));
    const engine = new DurableEngine({ host, store, clock: new VirtualClock(Date.UTC(2026, 0, 1)), log: () => undefined });
    engine.start();
    try {
      engine.startNew('one', 'X', 'old');
      await until(() => gates()?.has('old') === true, 'the old execution’s activity to run');
      engine.terminate('X', 'test');
      await until(() => engine.status('X')?.runtimeStatus === 'Terminated', 'X terminated');
      engine.startNew('one', 'X', 'new');
      await until(() => gates()?.has('new') === true, 'the new execution’s activity to run');
      gates().get('old')?.(); // the first execution's activity finishes late
      await new Promise((r) => setTimeout(r, 200));
      expect(engine.status('X')?.runtimeStatus).toBe('Running');
      gates().get('new')?.();
      await until(() => engine.status('X')?.runtimeStatus === 'Completed', 'X completed');
      expect(engine.status('X')?.output).toBe('result of new');
    } finally {
      await engine.stop();
      store.close();
    }
  });

  it('…also after the terminal instance was purged: generations are never reused within a store', async () => {
    const gates = () => (globalThis as unknown as { __faultGates: Map<string, () => void> }).__faultGates;
    const store = new DurableStore(path.join(dir, 'purged.sqlite'));
    const engine = new DurableEngine({ host, store, clock: new VirtualClock(Date.UTC(2026, 0, 1)), log: () => undefined });
    engine.start();
    try {
      engine.startNew('one', 'P', 'purged-old');
      await until(() => gates()?.has('purged-old') === true, 'the old execution’s activity to run');
      engine.terminate('P', 'test');
      await until(() => engine.status('P')?.runtimeStatus === 'Terminated', 'P terminated');
      expect(engine.purge('P')).toBe(true);
      engine.startNew('one', 'P', 'purged-new');
      await until(() => gates()?.has('purged-new') === true, 'the new execution’s activity to run');
      gates().get('purged-old')?.(); // the purged execution's activity finishes late
      await new Promise((r) => setTimeout(r, 200));
      expect(engine.status('P')?.runtimeStatus).toBe('Running');
      gates().get('purged-new')?.();
      await until(() => engine.status('P')?.runtimeStatus === 'Completed', 'P completed');
      expect(engine.status('P')?.output).toBe('result of purged-new');
    } finally {
      await engine.stop();
      store.close();
    }
  });

  it('an event queued behind a long timer’s slice is processed at once, not at the next slice days later', async () => {
    const gates = () => (globalThis as unknown as { __faultGates: Map<string, () => void> }).__faultGates;
    const clock = new VirtualClock(Date.UTC(2026, 0, 1));
    const store = new DurableStore(path.join(dir, 'behind.sqlite'));
    // One slot, so the slice's TimerFired and the event are both queued before the episode runs.
    const engine = new DurableEngine({ host, store, clock, log: () => undefined, maxConcurrency: 1 });
    engine.start();
    try {
      engine.startNew('goOrTenDays', 'L', null);
      await until(() => engine.status('L')?.runtimeStatus === 'Running' && engine.stats().pendingTimers === 1, 'L waiting');
      engine.startNew('one', 'B', 'blocker');
      await until(() => gates()?.has('blocker') === true, 'the blocker to hold the only slot');
      clock.advance(3 * 86_400_000 + 1_000); // the first 3-day slice of the 10-day timer fires
      engine.raiseEvent('L', 'go', 'here');
      gates().get('blocker')?.();
      await until(() => engine.status('L')?.runtimeStatus === 'Completed', 'L completed by the event', 3000);
      expect(engine.status('L')?.output).toBe('here');
    } finally {
      await engine.stop();
      store.close();
    }
  });
});
