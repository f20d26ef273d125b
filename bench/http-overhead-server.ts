/**
 * Server side of bench/http-overhead: serves the app's real `healthz` handler either through
 * devhost (registration capture, route matching, the library's streaming proxy path and
 * invocation model) or from a bare node:http server that calls the same handler directly.
 * Prints `READY <port>` when listening.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { FunctionHost } from '../devhost/host';
import { startHttpServer } from '../devhost/http-server';

const ROOT = path.resolve(__dirname, '../..');
const mode = process.argv[2];

async function main(): Promise<void> {
  process.env['MERIDIAN_MODE'] = 'local';
  process.env['LOG_LEVEL'] = 'error';
  process.env['MERIDIAN_DATA_DIR'] ??= mkdtempSync(path.join(os.tmpdir(), 'meridian-bench-http-'));
  if (mode === 'devhost') {
    const host = new FunctionHost({ appDir: ROOT });
    await host.load([path.join(ROOT, 'dist/functions/index.js')]);
    const server = await startHttpServer({ host, routePrefix: 'api', maxBodyBytes: 1 << 20, region: 'eastus' });
    process.stdout.write(`READY ${server.port}\n`);
    return;
  }
  if (mode === 'bare') {
    const { healthz } = require(path.join(ROOT, 'dist/functions/health.js')) as typeof import('../functions/health');
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const request = new HttpRequest({ method: req.method ?? 'GET', url: `http://127.0.0.1${req.url}`, headers });
        void Promise.resolve(healthz(request, new InvocationContext({ functionName: 'healthz' }))).then((out) => {
          const init = out as { status?: number; jsonBody?: unknown; headers?: Headers };
          const body = JSON.stringify(init.jsonBody);
          const h: Record<string, string> = { 'content-type': 'application/json' };
          new Headers(init.headers as ConstructorParameters<typeof Headers>[0]).forEach((v, k) => (h[k] = v));
          res.writeHead(init.status ?? 200, h).end(body);
        });
      });
    });
    server.keepAliveTimeout = 65_000;
    server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`));
    return;
  }
  throw new Error('usage: http-overhead-server devhost|bare');
}

void main();

// Exit through process.exit so --cpu-prof and friends write their output.
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
