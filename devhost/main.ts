/**
 * `npm start`: the whole system offline. Starts the global (tenant-free) Azurite, one devhost
 * process per residency boundary among the served regions, and the local front door on
 * 127.0.0.1:7071 (`PORT` overrides; 0 picks a free port). Exits cleanly on SIGINT/SIGTERM and
 * leaves no child process behind.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { AZURITE_GLOBAL_ACCOUNT } from '../src/adapters/local/azurite';
import { loadCatalog, parseServedRegions, tenantsFileSchema } from '../src/config';
import { launchAzurite, type RunningAzurite } from './azurite';
import { acquireDataLock } from './data-lock';
import { boundaryNodeArgs } from './node-args';
import { startFrontDoor, type RunningFrontDoor } from './front-door';
import { appRoot, loadLocalSettings } from './settings';
import { persistClock, readPersistedClock } from './virtual-clock';
import { readFileSync } from 'node:fs';

interface Child {
  boundary: string;
  regions: string[];
  process: ChildProcess;
  url?: string;
}

function say(message: string): void {
  process.stdout.write(`${message}\n`);
}

async function main(): Promise<void> {
  const root = appRoot();
  loadLocalSettings(root);
  const env = process.env;
  if (env['WEBSITE_INSTANCE_ID'] || env['MERIDIAN_MODE'] === 'azure') {
    throw new Error('npm start runs local mode only; azure mode runs in Azure Functions');
  }
  const dataDir = path.resolve(env['MERIDIAN_DATA_DIR'] ?? '.data');
  const catalog = loadCatalog();
  // npm start serves every configured region unless told otherwise (API.md "Local runtime").
  const served = parseServedRegions(env['MERIDIAN_SERVED_REGIONS'] ?? catalog.regions.map((r) => r.name).join(','), catalog);
  const byBoundary = new Map<string, string[]>();
  for (const name of served) {
    const b = catalog.regions.find((r) => r.name === name)?.boundary as string;
    byBoundary.set(b, [...(byBoundary.get(b) ?? []), name]);
  }
  const virtual = env['MERIDIAN_CLOCK'] === 'virtual';
  if (virtual && readPersistedClock(dataDir) === undefined) persistClock(dataDir, Date.now());

  const children: Child[] = [];
  let globalBlob: RunningAzurite | undefined;
  let globalLaunch: Promise<RunningAzurite> | undefined;
  let frontDoor: RunningFrontDoor | undefined;
  let stopping = false;

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await frontDoor?.close().catch(() => undefined);
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.process.exitCode !== null || c.process.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.process.kill('SIGKILL'), 10_000);
            c.process.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.process.kill('SIGTERM');
          }),
      ),
    );
    const global = globalBlob ?? (await globalLaunch?.catch(() => undefined));
    await global?.stop().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    // One `npm start` per data directory (each boundary process claims its own as well).
    acquireDataLock(path.join(dataDir, 'global'), 'npm start');
    // The global Azurite boots while the boundary processes start; they wait for it only
    // before they need it.
    const launched = await launchAzurite({ account: AZURITE_GLOBAL_ACCOUNT, location: path.join(dataDir, 'global', 'blob') });
    const globalUrl = launched.url;
    globalLaunch = launched.ready;
    const entry = path.join(__dirname, 'boundary.js');
    await Promise.all(
      [...byBoundary].map(async ([boundary, regions]) => {
        const child: Child = {
          boundary,
          regions,
          process: fork(entry, [], {
            execArgv: [...process.execArgv, ...boundaryNodeArgs(os.availableParallelism())],
            env: {
              ...env,
              MERIDIAN_MODE: 'local',
              MERIDIAN_DATA_DIR: dataDir,
              MERIDIAN_SERVED_REGIONS: regions.join(','),
              MERIDIAN_GLOBAL_BLOB_URL: globalUrl,
              DEVHOST_PORT: '0',
              PORT: undefined,
            },
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          }),
        };
        children.push(child);
        child.url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`devhost [${boundary}] did not start within 120 s`)), 120_000);
          child.process.on('message', (m: { type?: string; port?: number; message?: string }) => {
            if (m.type === 'ready') {
              clearTimeout(timer);
              resolve(`http://127.0.0.1:${m.port}`);
            } else if (m.type === 'failed') {
              clearTimeout(timer);
              reject(new Error(`devhost [${boundary}] failed: ${m.message}`));
            }
          });
          child.process.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`devhost [${boundary}] exited with ${code}`));
          });
        });
        child.process.on('exit', (code) => {
          if (!stopping) {
            say(`devhost [${boundary}] exited unexpectedly (${code}); shutting down`);
            void shutdown(1);
          }
        });
      }),
    );

    const tenants = [
      ...tenantsFileSchema.parse(JSON.parse(readFileSync(path.join(root, 'config', 'tenants.json'), 'utf8'))).tenants,
    ];
    const local = tenantsFileSchema.parse(JSON.parse(readFileSync(path.join(root, 'config', 'tenants.local.json'), 'utf8')));
    tenants.push(...local.tenants);
    const backends = new Map<string, string>();
    for (const b of byBoundary.keys()) {
      const c = children.find((x) => x.boundary === b);
      if (c?.url) backends.set(b, c.url);
    }

    frontDoor = await startFrontDoor({
      port: Number(env['PORT'] ?? 7071),
      backends,
      tenants,
      operatorTenantId: local.operatorTenantId,
      knownBoundaries: catalog.boundaries,
      regionBoundary: new Map(catalog.regions.map((r) => [r.name, r.boundary])),
      ...(virtual
        ? {
            advanceClock: async (ms: number) => {
              const now = (readPersistedClock(dataDir) ?? Date.now()) + ms;
              persistClock(dataDir, now);
              await Promise.all(
                [...backends.values()].map(async (url) => {
                  const r = await fetch(`${url}/_devhost/clock`, {
                    method: 'POST',
                    headers: { 'content-type': 'application/json' },
                    body: JSON.stringify({ to: now }),
                  });
                  if (!r.ok) throw new Error(`clock advance failed at ${url}: ${r.status}`);
                }),
              );
              return now;
            },
          }
        : {}),
    });
    for (const c of children) say(`boundary ${c.boundary} (${c.regions.join(', ')}): ${c.url}`);
    globalBlob = await launched.ready;
    say(`shared documents (global Azurite ${AZURITE_GLOBAL_ACCOUNT}): ${globalBlob.url}`);
    say(`Meridian front door listening on ${frontDoor.url}`);
  } catch (err) {
    say(`Meridian failed to start: ${(err as Error).message}`);
    await shutdown(1);
  }
}

void main();
