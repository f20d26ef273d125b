import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionOfInstanceId, startDurableEngine } from '../../devhost/durable';
import type { FunctionHost } from '../../devhost/host';
import { VirtualClock } from '../../devhost/virtual-clock';
import { startTestSystem, type TestSystem } from './harness';

let sys: TestSystem;

beforeAll(async () => {
  sys = await startTestSystem();
});

afterAll(async () => {
  await sys?.close();
});

const EventType = { TaskScheduled: 4, TimerCreated: 10, TimerFired: 11, EventRaised: 15 } as const;

function history(id: string): { EventType: number; EventId: number; [k: string]: unknown }[] {
  return (sys.durable.engine.status(id, { showHistory: true })?.historyEvents ?? []) as never;
}

/** Resolves once nothing is running or queued (timers may be pending). */
function idle(): Promise<true> {
  return sys.until(() => {
    const s = sys.durable.stats();
    return s.active === 0 && s.readyInstances === 0 && s.queuedWork === 0;
  }, 'the engine to go idle');
}

describe('durable engine: orchestrations replayed through the real durable-functions library', () => {
  it('runs sequential activities with sequence-numbered TaskScheduled events', async () => {
    const id = await sys.start('sequence');
    expect(id).toMatch(/^eastus-[0-9a-f]{32}$/);
    expect(regionOfInstanceId(id)).toBe('eastus');
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello London']);
    const scheduled = history(id).filter((e) => e.EventType === EventType.TaskScheduled);
    expect(scheduled.map((e) => [e.EventId, e['Name']])).toEqual([
      [0, 'hello'],
      [1, 'hello'],
      [2, 'hello'],
    ]);
  });

  it('fans out 50 activities and fans in', async () => {
    const id = await sys.start('fanOut', 50);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toBe(2 * ((49 * 50) / 2));
    expect(history(id).filter((e) => e.EventType === EventType.TaskScheduled)).toHaveLength(50);
  });

  it('retries a failing activity with backoff timers that fire by the clock', async () => {
    const id = await sys.start('retry', { key: 'r1', failures: 2, maxAttempts: 3 });
    await idle();
    expect(sys.durable.engine.status(id)?.runtimeStatus).toBe('Running');
    expect(sys.durable.stats().pendingTimers).toBe(1);
    sys.clock.advance(999);
    await idle();
    expect(history(id).filter((e) => e.EventType === EventType.TaskScheduled)).toHaveLength(1);
    sys.clock.advance(1); // first retry after 1 s
    await idle();
    expect(history(id).filter((e) => e.EventType === EventType.TaskScheduled)).toHaveLength(2);
    sys.clock.advance(1999); // backoff coefficient 2: the second retry waits 2 s
    await idle();
    expect(sys.durable.engine.status(id)?.runtimeStatus).toBe('Running');
    sys.clock.advance(1);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toEqual({ attempts: 3 });
    // attempt 0, timer 1, attempt 2, timer 3, attempt 4
    expect(
      history(id)
        .filter((e) => e.EventType === EventType.TaskScheduled)
        .map((e) => e.EventId),
    ).toEqual([0, 2, 4]);
    expect(
      history(id)
        .filter((e) => e.EventType === EventType.TimerCreated)
        .map((e) => e.EventId),
    ).toEqual([1, 3]);
  });

  it('gives up after maxNumberOfAttempts and surfaces the last failure', async () => {
    const id = await sys.start('retry', { key: 'r2', failures: 10, maxAttempts: 2 });
    await idle();
    sys.clock.advance(1000);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.runtimeStatus).toBe('Completed');
    expect((done.output as { gaveUp: string }).gaveUp).toContain('flaky attempt 2 failed');
  });

  it('delivers an external event raised before the orchestrator awaits it', async () => {
    const id = sys.durable.engine.startNew('approval', 'approval-early', undefined);
    sys.durable.engine.raiseEvent(id, 'approve', 'early yes'); // arrives while the activity runs
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toEqual({ decision: 'early yes' });
    const h = history(id);
    const raised = h.findIndex((e) => e.EventType === EventType.EventRaised);
    const completed = h.findIndex((e) => e.EventType === 5);
    expect(raised).toBeGreaterThan(-1);
    expect(raised).toBeLessThanOrEqual(completed + 1);
  });

  it('delivers an external event raised after the orchestrator awaits it, with custom status', async () => {
    const id = await sys.start('approval');
    await sys.until(
      () => (sys.durable.engine.status(id)?.customStatus as { stage?: string } | null)?.stage === 'waiting',
      'the custom status',
    );
    await idle();
    expect(sys.durable.engine.status(id)?.runtimeStatus).toBe('Running');
    const res = await sys.api('POST', `/runtime/webhooks/durabletask/instances/${id}/raiseEvent/approve`, { ok: 1 });
    expect(res.status).toBe(202);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toEqual({ decision: { ok: 1 } });
    expect(done.customStatus).toEqual({ stage: 'decided' });
  });

  it('event beats timer: the timer is cancelled and never fires', async () => {
    const id = await sys.start('race', { timeoutMs: 60_000 });
    await idle();
    const timersBefore = sys.durable.stats().pendingTimers;
    expect(timersBefore).toBeGreaterThanOrEqual(1);
    await sys.api('POST', `/runtime/webhooks/durabletask/instances/${id}/raiseEvent/go`, 'yes');
    await sys.until(() => history(id).some((e) => e.EventType === EventType.EventRaised), 'the event');
    await idle();
    expect(sys.durable.engine.status(id)?.runtimeStatus).toBe('Running');
    expect(sys.durable.stats().pendingTimers).toBe(timersBefore - 1);
    sys.clock.advance(120_000);
    await idle();
    await sys.api('POST', `/runtime/webhooks/durabletask/instances/${id}/raiseEvent/finish`, 'end');
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toEqual({ winner: 'event', value: 'yes', extra: 'end' });
    expect(history(id).some((e) => e.EventType === EventType.TimerFired)).toBe(false);
  });

  it('timer beats event when the deadline passes first', async () => {
    const id = await sys.start('race', { timeoutMs: 60_000 });
    await idle();
    sys.clock.advance(59_999);
    await idle();
    expect(sys.durable.engine.status(id)?.runtimeStatus).toBe('Running');
    sys.clock.advance(1);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toEqual({ winner: 'timer' });
  });

  it('splits long timers into intervals and fires at the final time', async () => {
    const started = sys.clock.now();
    const id = await sys.start('longTimer', 10);
    await idle();
    for (let day = 1; day <= 9; day++) {
      sys.clock.advance(86_400_000);
      await idle();
      expect(sys.durable.engine.status(id)?.runtimeStatus).toBe('Running');
    }
    sys.clock.advance(86_400_000);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(Date.parse(done.output as string)).toBeGreaterThanOrEqual(started + 10 * 86_400_000);
    expect(history(id).filter((e) => e.EventType === EventType.TimerCreated).length).toBeGreaterThan(1);
  });

  it('runs sub-orchestrations and propagates their failures to the parent', async () => {
    const id = await sys.start('parent');
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.runtimeStatus).toBe('Completed');
    const out = done.output as { child: string[]; failure: string };
    expect(out.child).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello London']);
    expect(out.failure).toContain('boom: from-parent');
    expect(sys.durable.engine.status(`${id}:0`)?.runtimeStatus).toBe('Completed');
    expect(sys.durable.engine.status(`${id}:1`)?.runtimeStatus).toBe('Failed');
    expect(regionOfInstanceId(`${id}:0`)).toBe('eastus');
  });

  it('continues as new with a fresh history', async () => {
    const id = await sys.start('counter', 0);
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toBe('done at 3');
    expect(history(id).filter((e) => e.EventType === EventType.TaskScheduled)).toHaveLength(0);
  });

  it('lets an orchestrator catch an activity failure', async () => {
    const id = await sys.start('caught');
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.output).toBe("caught: Activity function 'boom' failed: boom: caught ");
  });

  it('fails the orchestration on an uncaught activity failure', async () => {
    const id = await sys.start('uncaught');
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.runtimeStatus).toBe('Failed');
    expect(done.output).toContain('boom: uncaught');
    const res = await sys.api('GET', `/runtime/webhooks/durabletask/instances/${id}`);
    expect(res.status).toBe(400);
  });

  it('terminates a running instance and then purges it', async () => {
    const id = await sys.start('approval');
    await sys.waitFor(id, ['Running']);
    const purgeEarly = await sys.api('DELETE', `/runtime/webhooks/durabletask/instances/${id}`);
    expect(purgeEarly.status).toBe(409);
    const res = await sys.api('POST', `/runtime/webhooks/durabletask/instances/${id}/terminate?reason=stop`);
    expect(res.status).toBe(202);
    const done = await sys.waitFor(id, ['Terminated']);
    expect(done.output).toBe('stop');
    expect((await sys.api('POST', `/runtime/webhooks/durabletask/instances/${id}/raiseEvent/approve`, 1)).status).toBe(410);
    const purged = await sys.api('DELETE', `/runtime/webhooks/durabletask/instances/${id}`);
    expect(purged).toEqual({ status: 200, body: { instancesDeleted: 1 } });
    expect((await sys.api('GET', `/runtime/webhooks/durabletask/instances/${id}`)).status).toBe(404);
    expect(sys.durable.engine.status(id)).toBeUndefined();
  });

  it('fails an instance whose replay diverges from its history, saying so', async () => {
    (globalThis as Record<string, unknown>)['__durableFixtureVariant'] = 'a';
    const id = await sys.start('nondeterministic');
    await sys.until(() => history(id).some((e) => e.EventType === 5), 'the activity result');
    await idle();
    (globalThis as Record<string, unknown>)['__durableFixtureVariant'] = 'b';
    try {
      await sys.api('POST', `/runtime/webhooks/durabletask/instances/${id}/raiseEvent/go`);
      const done = await sys.waitFor(id, ['Completed', 'Failed']);
      expect(done.runtimeStatus).toBe('Failed');
      expect(done.output).toMatch(/Non-deterministic workflow detected/);
      expect(done.output).toContain("CallActivity 'hello'");
      expect(done.output).toContain("CallActivity 'noop'");
    } finally {
      (globalThis as Record<string, unknown>)['__durableFixtureVariant'] = 'a';
    }
  });

  it('fails an instance loudly on an unsupported action', async () => {
    const id = await sys.start('unsupported');
    const done = await sys.waitFor(id, ['Completed', 'Failed']);
    expect(done.runtimeStatus).toBe('Failed');
    expect(done.output).toContain('does not support the CallHttp action');
  });

  it('answers 400 for an unknown orchestrator and 409 for a live duplicate id', async () => {
    const unknown = await sys.api('POST', '/runtime/webhooks/durabletask/orchestrators/nope');
    expect(unknown.status).toBe(400);
    await sys.start('approval', undefined, 'dup-1');
    const dup = await sys.api('POST', '/runtime/webhooks/durabletask/orchestrators/approval/dup-1');
    expect(dup.status).toBe(409);
  });
});

describe('startDurableEngine', () => {
  it('fails fast when the app registers durable entities', async () => {
    const fakeHost = {
      functions: () => [{ name: 'counterEntity', trigger: { type: 'entityTrigger' } }],
    } as unknown as FunctionHost;
    await expect(
      startDurableEngine({
        host: fakeHost,
        dbFile: '/nonexistent/never-created.sqlite',
        clock: new VirtualClock(0),
        region: 'eastus',
        taskHubName: 'x',
        baseUrl: () => 'http://127.0.0.1:1',
      }),
    ).rejects.toThrow(/does not support entityTrigger \(function 'counterEntity'\)/);
  });
});
