/**
 * devhost's durable engine: runs `durable-functions` 3.x orchestrations and activities offline
 * and serves the Durable Functions HTTP API that the real `DurableClient` calls.
 *
 * Wiring (in a boundary process, before serving requests):
 * ```ts
 * const durable = await startDurableEngine({ host, dbFile: `${data}/${boundary}/durable.sqlite`,
 *   clock, region, taskHubName: 'meridian', baseUrl: () => server.url });
 * // startHttpServer({ ..., extraHandlers: [durable.httpHandler] })
 * process.env.WEBSITE_HOSTNAME = `127.0.0.1:${server.port}`;
 * ```
 */
import type { FunctionHost } from '../host';
import type { ExtraHandler } from '../http-server';
import type { HostClock } from '../virtual-clock';
import { DurableEngine, type DurableLog, type EngineStats } from './engine';
import { clientBindingData, createDurableHttpHandler, type DurableClientBindingData } from './http-api';
import { DurableStore } from './store';

export { DurableEngine, EngineError, type DurableLog, type EngineStats, type InstanceStatus } from './engine';
export { clientBindingData, managementLinks, WEBHOOK_PREFIX, type DurableClientBindingData } from './http-api';
export { newInstanceId, regionOfInstanceId } from './ids';
export type { RuntimeStatus } from './store';

export interface DurableEngineOptions {
  /** A loaded FunctionHost (after `await host.load()`). */
  host: FunctionHost;
  /** SQLite file of the task hub (created if missing); devhost passes `<data>/<boundary>/durable.sqlite`. */
  dbFile: string;
  /** The host clock: timers fire by it (system: real timeouts; virtual: on every `onChange`). */
  clock: HostClock;
  /** Region encoded into generated instance ids (`<region>-<32 hex>`). */
  region: string;
  taskHubName: string;
  /** Origin of the HTTP server that serves `httpHandler`, e.g. `http://127.0.0.1:54321`; read per use. */
  baseUrl: () => string;
  log?: DurableLog;
  /** Orchestrator episodes plus activity invocations running at once. Default 32. */
  maxConcurrency?: number;
}

export interface RunningDurableEngine {
  engine: DurableEngine;
  /** Serves `/runtime/webhooks/durabletask/...`; pass it in `startHttpServer({ extraHandlers })`. */
  httpHandler: ExtraHandler;
  /** The `durableClient` binding data currently handed to functions. */
  clientBindingData(): DurableClientBindingData;
  /** Stops dispatch, waits for running invocations to commit, closes the database. */
  stop(): Promise<void>;
  stats(): EngineStats;
}

const SUPPORTED_TRIGGERS = new Set(['orchestrationTrigger', 'activityTrigger']);
const DURABLE_TRIGGERS = new Set(['orchestrationTrigger', 'activityTrigger', 'entityTrigger']);

/**
 * Opens the task hub, registers the `durableClient` input provider on the host, re-dispatches
 * work that was pending when the process last stopped, and starts firing timers.
 * Throws at once when the app registers durable triggers the engine does not run (entities).
 */
export async function startDurableEngine(options: DurableEngineOptions): Promise<RunningDurableEngine> {
  const unsupported = options.host
    .functions()
    .filter((f) => DURABLE_TRIGGERS.has(f.trigger.type) && !SUPPORTED_TRIGGERS.has(f.trigger.type));
  if (unsupported.length > 0) {
    throw new Error(
      `devhost's durable engine does not support ${unsupported
        .map((f) => `${f.trigger.type} (function '${f.name}')`)
        .join(', ')}: only orchestrations and activities run offline.`,
    );
  }
  const store = new DurableStore(options.dbFile);
  const engine = new DurableEngine({
    host: options.host,
    store,
    clock: options.clock,
    ...(options.log ? { log: options.log } : {}),
    ...(options.maxConcurrency ? { maxConcurrency: options.maxConcurrency } : {}),
  });
  const binding = () => clientBindingData(options.baseUrl(), options.taskHubName);
  const provider = () => ({ json: JSON.stringify(binding()) });
  options.host.inputProviders.set('durableClient', provider);
  options.host.inputProviders.set('orchestrationClient', provider);
  engine.start();
  let stopped = false;
  return {
    engine,
    httpHandler: createDurableHttpHandler({
      engine,
      taskHubName: options.taskHubName,
      region: options.region,
      origin: options.baseUrl,
    }),
    clientBindingData: binding,
    async stop() {
      if (stopped) return;
      stopped = true;
      await engine.stop();
      store.close();
    },
    stats: () => engine.stats(),
  };
}
