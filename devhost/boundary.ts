/**
 * One devhost process: the function app for one residency boundary (like one regional
 * function app in Azure), with its own Azurite, SQLite files and task hub under
 * `<data>/<boundary>/`. Started by `npm start` (devhost/main.ts); reports its port over IPC.
 */
import path from 'node:path';
import { AZURITE_GLOBAL_ACCOUNT, azuriteAccountFor } from '../src/adapters/local/azurite';
import { LocalClock } from '../src/adapters/local/clock';
import { ensureTopology, openLocalServiceBus } from '../src/adapters/local/service-bus';
import { BACKGROUND_CHECKPOINT_MS, openSqliteDocumentStore } from '../src/adapters/local/sqlite-document-store';
import { loadCatalog, parseServedRegions } from '../src/config';
import { launchAzurite, type RunningAzurite } from './azurite';
import { acquireDataLock } from './data-lock';
import { startDurableEngine } from './durable';
import { FunctionHost } from './host';
import { readBody, sendProblem, startHttpServer, type ExtraHandler } from './http-server';
import { appRoot, loadLocalSettings, routePrefixOf } from './settings';
import { startTimers } from './timers';
import { startBlobTriggers } from './triggers/blob';
import { startCosmosTriggers } from './triggers/cosmos';
import { startServiceBusTriggers } from './triggers/service-bus';
import { installHostClock, VirtualClock } from './virtual-clock';

/** Trigger types this devhost drives; any other fails start-up (never silently ignored). */
export const SUPPORTED_TRIGGERS = new Set([
  'httpTrigger',
  'timerTrigger',
  'serviceBusTrigger',
  'cosmosDBTrigger',
  'blobTrigger',
  'orchestrationTrigger',
  'activityTrigger',
]);

export interface BoundaryProcess {
  boundary: string;
  port: number;
  url: string;
  stop(): Promise<void>;
}

function log(level: string, message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, source: 'devhost', message, ...fields })}\n`);
}

export async function startBoundary(): Promise<BoundaryProcess> {
  const root = appRoot();
  loadLocalSettings(root);
  const env = process.env;
  env['MERIDIAN_MODE'] ??= 'local';
  const dataDir = path.resolve(env['MERIDIAN_DATA_DIR'] ?? '.data');
  env['MERIDIAN_DATA_DIR'] = dataDir;
  const catalog = loadCatalog();
  const served = parseServedRegions(env['MERIDIAN_SERVED_REGIONS'], catalog);
  const boundary = catalog.regions.find((r) => r.name === served[0])?.boundary ?? 'us';
  const region = served[0] as string;

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    // First: a second devhost on this boundary's files would run its task hub twice.
    const lock = acquireDataLock(path.join(dataDir, boundary), `devhost [${boundary}]`);
    stops.push(async () => lock.release());
    const clock = installHostClock(env['MERIDIAN_CLOCK'] === 'virtual' ? 'virtual' : 'system', dataDir);

    // The boundary's Azurite starts while the app loads (its URL is known at once).
    let azuriteReady: Promise<RunningAzurite> | undefined;
    if (!env['MERIDIAN_BLOB_URL']) {
      const launched = await launchAzurite({
        account: azuriteAccountFor(boundary),
        location: path.join(dataDir, boundary, 'blob'),
      });
      azuriteReady = launched.ready;
      stops.push(async () => (await launched.ready.catch(() => undefined))?.stop());
      env['MERIDIAN_BLOB_URL'] = launched.url;
      env['MERIDIAN_BLOB_ACCOUNT'] = launched.account;
    }
    env['MERIDIAN_GLOBAL_BLOB_ACCOUNT'] ??= AZURITE_GLOBAL_ACCOUNT;

    // The global bus (tenant-free): local mode creates the topology at start; Azure's infra does.
    const busClock = new LocalClock();
    const bus = openLocalServiceBus({ path: path.join(dataDir, 'global', 'bus.sqlite'), clock: busClock });
    await ensureTopology(bus, catalog.topology);

    const host = new FunctionHost({
      appDir: root,
      log: (level, category, message, fields) => {
        if (level === 'debug' || level === 'trace') return;
        log(level, message, { category, boundary, ...fields });
      },
    });
    await host.load();
    stops.push(() => host.terminate());
    await azuriteReady;
    await waitForGlobalBlob(env['MERIDIAN_GLOBAL_BLOB_URL']);
    const unsupported = host.functions().filter((f) => !SUPPORTED_TRIGGERS.has(f.trigger.type));
    if (unsupported.length) {
      throw new Error(
        `devhost does not support trigger type(s): ${unsupported.map((f) => `${f.name} (${f.trigger.type})`).join(', ')}`,
      );
    }

    let serverUrl = '';
    const durable = await startDurableEngine({
      host,
      dbFile: path.join(dataDir, boundary, 'durable.sqlite'),
      clock,
      region,
      taskHubName: env['MERIDIAN_TASK_HUB'] ?? `meridian${boundary}`,
      baseUrl: () => serverUrl,
      log: (level, message) => {
        if (level !== 'debug') log(level, message, { boundary, source: 'durable' });
      },
    });
    stops.push(() => durable.stop());

    const devhostRoutes: ExtraHandler = async (req, res, url) => {
      if (!url.pathname.startsWith('/_devhost/')) return false;
      if (url.pathname === '/_devhost/clock' && req.method === 'POST') {
        if (!(clock instanceof VirtualClock)) {
          sendProblem(res, 409, 'conflict', 'Conflict', 'The clock is not virtual (MERIDIAN_CLOCK=virtual).');
          return true;
        }
        const body = await readBody(req, 1024);
        const parsed = body === 'too_large' ? undefined : (JSON.parse(body.toString() || '{}') as { to?: number });
        if (typeof parsed?.to !== 'number') {
          sendProblem(res, 400, 'validation_failed', 'Validation failed', 'Body must be {"to": <epoch ms>}.');
          return true;
        }
        const now = clock.setTo(parsed.to);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ now }));
        return true;
      }
      if (url.pathname === '/_devhost/info' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            boundary,
            region,
            servedRegions: served,
            now: clock.now(),
            functions: host.functions().map((f) => f.name),
            durable: durable.stats(),
          }),
        );
        return true;
      }
      sendProblem(res, 404, 'not_found', 'Not Found', `No devhost route ${url.pathname}.`);
      return true;
    };

    const server = await startHttpServer({
      host,
      routePrefix: routePrefixOf(root),
      maxBodyBytes: Number(env['MERIDIAN_MAX_BODY_BYTES'] ?? 16 * 1024 * 1024),
      region,
      port: Number(env['DEVHOST_PORT'] ?? 0),
      extraHandlers: [devhostRoutes, durable.httpHandler],
    });
    stops.push(() => server.close());
    serverUrl = server.url;
    env['WEBSITE_HOSTNAME'] = `127.0.0.1:${server.port}`;

    const serviceBus = startServiceBusTriggers({
      host,
      bus,
      clock: busClock,
      log: (message, fields) => log('warning', message, { boundary, ...fields }),
    });
    stops.push(() => serviceBus.stop());

    // The boundary's document store (the same object the app writes through: writes wake the feed).
    const store = openSqliteDocumentStore({
      path: path.join(dataDir, boundary, 'documents.sqlite'),
      containers: catalog.topology.containers,
      clock: busClock,
      backgroundCheckpointMs: BACKGROUND_CHECKPOINT_MS,
    });
    const cosmos = await startCosmosTriggers({
      host,
      store,
      database: catalog.topology.database,
      clock: busClock,
      log: (message, fields) => log('warning', message, { boundary, ...fields }),
    });
    stops.push(() => cosmos.stop());

    const blobTriggers = await startBlobTriggers({
      host,
      accounts: {
        boundary: { url: env['MERIDIAN_BLOB_URL'] as string, account: azuriteAccountFor(boundary) },
        ...(env['MERIDIAN_GLOBAL_BLOB_URL']
          ? { global: { url: env['MERIDIAN_GLOBAL_BLOB_URL'], account: AZURITE_GLOBAL_ACCOUNT } }
          : {}),
      },
      receiptsDir: path.join(dataDir, boundary),
      log: (message, fields) => log('warning', message, { boundary, ...fields }),
    });
    stops.push(() => blobTriggers.stop());

    const timers = startTimers({
      host,
      clock,
      stateFile: path.join(dataDir, boundary, 'timers.json'),
      settings: env,
      log: (message, fields) => log('error', message, { boundary, ...fields }),
    });
    stops.push(() => timers.stop());

    printFunctionTable(host, server.url, routePrefixOf(root), boundary);
    return { boundary, port: server.port, url: server.url, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** npm start launches the global Azurite in parallel with the boundaries: wait until it answers. */
async function waitForGlobalBlob(url: string | undefined, timeoutMs = 60_000): Promise<void> {
  if (!url) return;
  const until = Date.now() + timeoutMs;
  for (;;) {
    const answered = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      () => false,
    );
    if (answered) return;
    if (Date.now() > until) throw new Error(`the global blob store at ${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function printFunctionTable(host: FunctionHost, url: string, prefix: string, boundary: string): void {
  const lines = host.functions().map((f) => {
    if (f.trigger.type === 'httpTrigger') {
      const methods = (f.trigger['methods'] as string[] | undefined)?.join(',') ?? 'GET,POST';
      return `  ${f.name}: [${methods}] ${url}/${prefix}/${String(f.trigger['route'] ?? f.name)}`;
    }
    if (f.trigger.type === 'timerTrigger') return `  ${f.name}: timerTrigger ${String(f.trigger['schedule'])}`;
    return `  ${f.name}: ${f.trigger.type}`;
  });
  process.stdout.write(`devhost [${boundary}] functions:\n${lines.join('\n')}\n`);
}

if (require.main === module) {
  let running: BoundaryProcess | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await running?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  // Parent gone (IPC closed): never outlive it.
  process.on('disconnect', () => void shutdown(0));
  startBoundary()
    .then((b) => {
      running = b;
      process.send?.({ type: 'ready', boundary: b.boundary, port: b.port });
    })
    .catch((err: unknown) => {
      log('error', `devhost failed to start: ${(err as Error)?.message ?? String(err)}`, {
        stack: (err as Error)?.stack,
      });
      process.send?.({ type: 'failed', message: (err as Error)?.message ?? String(err) });
      process.exitCode = 1;
      void shutdown(1);
    });
}
