import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionHost } from '../../devhost/host';
import { startHttpServer, type RunningHttpServer } from '../../devhost/http-server';
import { startTimers, type RunningTimers } from '../../devhost/timers';
import { VirtualClock } from '../../devhost/virtual-clock';

const APP = path.resolve(__dirname, '../fixtures/stream-app');

describe('devhost serving a fixture app (real @azure/functions programming model)', () => {
  const host = new FunctionHost({ appDir: APP });
  let server: RunningHttpServer;
  beforeAll(async () => {
    await host.load();
    server = await startHttpServer({ host, routePrefix: 'api', maxBodyBytes: 1024, region: 'testregion' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('uses the streaming path (the library reports HttpUri)', () => {
    expect(host.capabilities['HttpUri']).toMatch(/^http:\/\/localhost:\d+\/$/);
  });

  it('streams a response chunk by chunk as the handler produces it', async () => {
    const started = Date.now();
    const res = await fetch(`${server.url}/api/ticks/4`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const arrivals: number[] = [];
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arrivals.push(Date.now() - started);
      text += Buffer.from(value).toString();
    }
    expect(text.match(/event: delta/g)).toHaveLength(4);
    expect(text).toContain('event: done');
    // The first delta arrives long before the last one was produced (~600 ms later).
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    expect((arrivals.at(-1) as number) - (arrivals[0] as number)).toBeGreaterThan(300);
  });

  it('passes method, body, catch-all params, query and request id to the handler', async () => {
    const res = await fetch(`${server.url}/api/echo/a/b?q=1`, {
      method: 'POST',
      body: 'hello',
      headers: { 'x-request-id': 'rid-1' },
    });
    expect(await res.json()).toEqual({ rest: 'a/b', body: 'hello', q: '1', fn: 'echo', rid: 'rid-1' });
    expect(res.headers.get('x-request-id')).toBe('rid-1');
  });

  it('answers 413 for a body over the limit without invoking the function', async () => {
    const res = await fetch(`${server.url}/api/echo/x`, { method: 'POST', body: 'x'.repeat(2048) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'payload_too_large' });
  });

  it('answers 500 problem+json without internals when the handler throws', async () => {
    const res = await fetch(`${server.url}/api/fail`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('secret');
    expect(JSON.parse(text)).toMatchObject({ code: 'internal' });
  });

  it('stops the worker side when the client disconnects mid-stream', async () => {
    await new Promise<void>((resolve) => {
      const req = http.get(`${server.url}/api/ticks/50`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
    });
    const after = await fetch(`${server.url}/api/echo/still-alive`, { method: 'POST', body: 'ok' });
    expect(after.status).toBe(200);
  });

  describe('timer triggers', () => {
    let dir: string;
    let timers: RunningTimers;
    const runs = () => (globalThis as unknown as { __fixtureTimerRuns: { isPastDue: boolean }[] }).__fixtureTimerRuns;
    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'devhost-timers-'));
    });
    afterAll(async () => {
      await timers?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('fires on the NCRONTAB schedule by the virtual clock, then past-due after downtime', async () => {
      const clock = new VirtualClock(Date.UTC(2026, 0, 1, 0, 0, 1));
      const stateFile = path.join(dir, 'timers.json');
      timers = startTimers({ host, clock, stateFile, settings: {}, log: () => undefined });
      expect(timers.schedule()).toEqual([{ name: 'everyFiveMinutes', next: '2026-01-01T00:05:00.000Z' }]);
      clock.advance(4 * 60_000);
      await new Promise((r) => setTimeout(r, 20));
      expect(runs()).toHaveLength(0);
      clock.advance(60_000);
      await vi_waitFor(() => runs().length === 1);
      expect(runs()[0]).toMatchObject({ isPastDue: false, name: 'everyFiveMinutes' });
      await timers.stop();

      // "Downtime": 1 hour passes with no devhost; on start the missed schedule runs once, past due.
      clock.advance(60 * 60_000);
      timers = startTimers({ host, clock, stateFile, settings: {}, log: () => undefined });
      await vi_waitFor(() => runs().length === 2);
      expect(runs()[1]).toMatchObject({ isPastDue: true });
    });
  });
});

async function vi_waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
