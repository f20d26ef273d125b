/**
 * Runs one app with the durable engine and nothing else: loads the app, serves its HTTP
 * triggers and the durable HTTP API on loopback, prints `{"url": ...}` as one JSON line on
 * stdout, and stops cleanly on SIGTERM/SIGINT. Used by the restart tests and handy to poke at
 * an orchestration by hand:
 *
 *   node dist/devhost/durable/standalone.js --app <entry.js> --db <file> [--port 0] [--region eastus]
 */
import path from 'node:path';
import { FunctionHost } from '../host';
import { startHttpServer, type ExtraHandler } from '../http-server';
import { SystemClock } from '../virtual-clock';
import { startDurableEngine } from './index';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`Missing --${name}`);
  return value;
}

async function main(): Promise<void> {
  const entry = path.resolve(arg('app'));
  const host = new FunctionHost({ appDir: path.dirname(entry) });
  await host.load([entry]);
  let handler: ExtraHandler = () => false;
  const region = arg('region', 'eastus');
  const server = await startHttpServer({
    host,
    routePrefix: 'api',
    maxBodyBytes: 1 << 20,
    region,
    port: Number(arg('port', '0')),
    extraHandlers: [(req, res, url) => handler(req, res, url)],
  });
  process.env['WEBSITE_HOSTNAME'] = `127.0.0.1:${server.port}`;
  const durable = await startDurableEngine({
    host,
    dbFile: path.resolve(arg('db')),
    clock: new SystemClock(),
    region,
    taskHubName: arg('hub', 'meridian'),
    baseUrl: () => server.url,
    log: (level, message) => process.stderr.write(`[durable ${level}] ${message}\n`),
  });
  handler = durable.httpHandler;
  const shutdown = async () => {
    await durable.stop();
    await server.close();
    await host.terminate();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
