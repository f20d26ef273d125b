/**
 * One in-process devhost for the durable tests: the fixture app on a FunctionHost, the HTTP
 * server with the durable handler, and the engine on a temporary SQLite file and a virtual
 * clock. One FunctionHost per process: vitest runs each test file in its own fork.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FunctionHost } from '../../devhost/host';
import { startHttpServer, type ExtraHandler, type RunningHttpServer } from '../../devhost/http-server';
import { VirtualClock } from '../../devhost/virtual-clock';
import { startDurableEngine, type InstanceStatus, type RunningDurableEngine, type RuntimeStatus } from '../../devhost/durable';

export const FIXTURE_DIR = path.join(__dirname, 'fixtures');

export interface TestSystem {
  host: FunctionHost;
  server: RunningHttpServer;
  clock: VirtualClock;
  durable: RunningDurableEngine;
  dir: string;
  /** Polls the engine (real time, bounded) until the instance reaches one of `statuses`. */
  waitFor(instanceId: string, statuses: RuntimeStatus[], timeoutMs?: number): Promise<InstanceStatus>;
  /** Polls until `check` returns a truthy value. */
  until<T>(check: () => T | undefined | false, what: string, timeoutMs?: number): Promise<T>;
  /** Starts an instance through the engine's HTTP API; resolves its id. */
  start(name: string, input?: unknown, instanceId?: string): Promise<string>;
  api(method: string, pathAndQuery: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

let host: FunctionHost | undefined;

export async function startTestSystem(options: { maxConcurrency?: number } = {}): Promise<TestSystem> {
  if (!host) {
    host = new FunctionHost({ appDir: FIXTURE_DIR });
    await host.load([path.join(FIXTURE_DIR, 'app.js')]);
  }
  const h = host;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'durable-test-'));
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  let handler: ExtraHandler = () => false;
  const server = await startHttpServer({
    host: h,
    routePrefix: 'api',
    maxBodyBytes: 1 << 20,
    region: 'eastus',
    extraHandlers: [(req, res, url) => handler(req, res, url)],
  });
  process.env['WEBSITE_HOSTNAME'] = `127.0.0.1:${server.port}`;
  const durable = await startDurableEngine({
    host: h,
    dbFile: path.join(dir, 'durable.sqlite'),
    clock,
    region: 'eastus',
    taskHubName: 'meridiantest',
    baseUrl: () => server.url,
    ...(options.maxConcurrency ? { maxConcurrency: options.maxConcurrency } : {}),
  });
  handler = durable.httpHandler;

  async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async function api(method: string, pathAndQuery: string, body?: unknown) {
    const res = await fetch(`${server.url}${pathAndQuery}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  return {
    host: h,
    server,
    clock,
    durable,
    dir,
    until,
    api,
    waitFor: (id, statuses, timeoutMs) =>
      until(
        () => {
          const s = durable.engine.status(id);
          return s && statuses.includes(s.runtimeStatus) ? s : undefined;
        },
        `${id} to reach ${statuses.join('/')} (now ${durable.engine.status(id)?.runtimeStatus ?? 'absent'})`,
        timeoutMs,
      ),
    async start(name, input, instanceId) {
      const res = await api(
        'POST',
        `/runtime/webhooks/durabletask/orchestrators/${name}${instanceId ? `/${instanceId}` : ''}`,
        input,
      );
      if (res.status !== 202) throw new Error(`start ${name} answered ${res.status}: ${JSON.stringify(res.body)}`);
      return (res.body as { id: string }).id;
    },
    async close() {
      await durable.stop();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
