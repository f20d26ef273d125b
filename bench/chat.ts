/**
 * bench/chat — POST /api/chat through one real devhost boundary process (dist/devhost/boundary.js:
 * its Azurite, blob/Service Bus/timer triggers, indexers and sweeps all on) against the fake
 * OpenAI-compatible server (chat answers after 200 ms, embeddings after 20 ms: the "model
 * time"), beside the floor: a bare node:http server making the same two fake calls.
 *
 * Open-loop at RATE requests/s from USERS users (each user one request every USERS/RATE s),
 * every question distinct (no cache hits), latency from each request's scheduled send time;
 * overhead = latency − model time (220 ms). The server under test runs on core 0 (taskset);
 * the fake and this load generator on core 1. The sample corpus is uploaded first and indexed
 * (embeddings from the fake, 512 dimensions). Prints one JSON line.
 *
 *   npx tsc -p tsconfig.build.json
 *   taskset -c 1 node dist/bench/chat.js --target devhost --rate 400 --duration 60 --users 1200
 *   taskset -c 1 node dist/bench/chat.js --target bare --rate 400 --duration 60 --users 1200
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AZURITE_GLOBAL_ACCOUNT } from '../src/adapters/local/azurite';
import { startAzurite } from '../devhost/azurite';
import { boundaryNodeArgs } from '../devhost/node-args';
import { mintDevToken } from '../devhost/token';
import { CHAT_QUESTIONS as QUESTIONS } from './lib/corpus';
import { startFakeOpenAiProcess, waitForOutput } from './lib/fake-openai-process';
import { machine, openLoop, peakRssMiB, peakRssOfPid, summarize } from './lib/stats';

const ROOT = path.resolve(__dirname, '../..');
const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'devhost' },
    rate: { type: 'string', default: '400' },
    duration: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    users: { type: 'string', default: '1200' },
    corpus: { type: 'string', default: path.resolve(ROOT, '../shared/corpus') },
    'cpu-prof': { type: 'boolean', default: false },
    /** Extra node/V8 flags for the devhost process, space-separated, after npm start's own (`--no-single-threaded-gc` undoes that one). */
    'node-args': { type: 'string', default: '' },
  },
});
const TARGET = values.target as 'devhost' | 'bare';
const RATE = Number(values.rate);
const DURATION_MS = Number(values.duration) * 1000;
const WARMUP_MS = Number(values.warmup) * 1000;
const USERS = Number(values.users);
const MODEL_MS = 200 + 20;
const TENANT = 'tenant-acme-corp';

/** Child processes to stop if the run fails half-way (a failed run must not leave servers behind). */
const started: ChildProcess[] = [];

const startFake = () => startFakeOpenAiProcess({ core: 1, chatDelayMs: 200, embeddingDelayMs: 20 });

async function startDevhost(
  fakeUrl: string,
  dataDir: string,
  globalBlobUrl: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      ...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, 'bench/profiles')}`] : []),
      // What npm start gives a boundary process that has one core (devhost/node-args.ts).
      ...boundaryNodeArgs(1),
      ...(values['node-args'] as string).split(' ').filter(Boolean),
      path.join(ROOT, 'dist/devhost/boundary.js'),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        MERIDIAN_MODE: 'local',
        MERIDIAN_SERVED_REGIONS: 'eastus,westus2',
        MERIDIAN_DATA_DIR: dataDir,
        DEVHOST_PORT: '0',
        MERIDIAN_GLOBAL_BLOB_URL: globalBlobUrl,
        MERIDIAN_OPENAI_BASE_URL: fakeUrl,
        MERIDIAN_OPENAI_MODEL: 'gpt-4o-mini',
        MERIDIAN_OPENAI_EMBEDDING_MODEL: 'text-embedding-3-small',
        LOG_LEVEL: 'warn',
      },
    },
  );
  started.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-4000)));
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-4000)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devhost did not start: ${out}`)), 120_000);
    child.on('message', (m: { type?: string; port?: number; message?: string }) => {
      if (m.type === 'ready' && m.port) {
        clearTimeout(timer);
        resolve(m.port);
      } else if (m.type === 'failed') reject(new Error(`devhost failed: ${m.message}`));
    });
    child.once('exit', (code) => reject(new Error(`devhost exited ${code}: ${out}`)));
  });
  return { child, port };
}

async function startBare(fakeUrl: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('taskset', ['-c', '0', process.execPath, path.join(__dirname, 'chat-bare-server.js'), fakeUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  const m = await waitForOutput(child, /READY (\d+)/, 'bare server');
  return { child, port: Number(m[1]) };
}

async function loadCorpus(base: string, token: string): Promise<number> {
  const files = readdirSync(values.corpus as string).filter((f) => f.endsWith('.md'));
  for (const f of files) {
    const res = await fetch(`${base}/api/documents?name=${encodeURIComponent(f)}&tier=kb`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'text/markdown' },
      body: readFileSync(path.join(values.corpus as string, f)),
    });
    if (res.status !== 202) throw new Error(`upload ${f}: ${res.status} ${await res.text()}`);
  }
  const until = Date.now() + 180_000;
  for (;;) {
    const list = (await (await fetch(`${base}/api/documents`, { headers: { authorization: token } })).json()) as {
      items: { status: string; chunks: number }[];
    };
    if (list.items.length === files.length && list.items.every((i) => i.status === 'indexed'))
      return list.items.reduce((n, i) => n + i.chunks, 0);
    if (Date.now() > until) throw new Error(`corpus not indexed: ${JSON.stringify(list.items)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** CPU seconds (user + system) a process has used so far (Linux, 100 ticks/s). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const fake = await startFake();
  started.push(fake.child);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'meridian-bench-chat-'));
  // The tenant-free shared store npm start's parent runs (here on the load generator's core).
  const globalBlob =
    TARGET === 'devhost'
      ? await startAzurite({ account: AZURITE_GLOBAL_ACCOUNT, location: path.join(dataDir, 'global', 'blob') })
      : undefined;
  if (globalBlob) started.push(globalBlob.child);
  const server =
    TARGET === 'bare' || !globalBlob ? await startBare(fake.url) : await startDevhost(fake.url, dataDir, globalBlob.url);
  const base = `http://127.0.0.1:${server.port}`;
  const tokens = await Promise.all(
    Array.from({ length: USERS }, (_, u) => mintDevToken({ tenant: TENANT, user: `user-${u}`, expiresInSeconds: 7200 })),
  );
  let chunks = 0;
  if (TARGET === 'devhost') chunks = await loadCorpus(base, `Bearer ${tokens[0]}`);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4096 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let measuring = false;
  let seq = 0;
  const send = (scheduledAt: number): Promise<void> =>
    new Promise((resolve) => {
      const i = seq++;
      const body = JSON.stringify({ message: `${QUESTIONS[i % QUESTIONS.length]} (case ${i})?` });
      const token = tokens[i % USERS] as string;
      const done = (status: string) => {
        if (measuring) {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === '200') latencies.push(performance.now() - scheduledAt);
        }
        resolve();
      };
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/api/chat',
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode)));
          res.on('error', () => done('error'));
        },
      );
      req.on('error', () => done('error'));
      req.end(body);
    });

  if (WARMUP_MS > 0) await openLoop({ ratePerSecond: RATE, durationMs: WARMUP_MS, send: (at) => send(at) });
  measuring = true;
  const cpu0 = { server: cpuSeconds(server.child.pid), fake: cpuSeconds(fake.child.pid), self: process.cpuUsage() };
  await openLoop({ ratePerSecond: RATE, durationMs: DURATION_MS, send: (at) => send(at) });
  measuring = false;
  const selfCpu = process.cpuUsage(cpu0.self);
  const cpu = {
    serverCpuMsPerRequest:
      Math.round(((cpuSeconds(server.child.pid) - cpu0.server) * 1e6) / ((DURATION_MS / 1000) * RATE)) / 1000,
    serverCoreUtilisation: Math.round(((cpuSeconds(server.child.pid) - cpu0.server) / (DURATION_MS / 1000)) * 100) / 100,
    fakeCoreUtilisation: Math.round(((cpuSeconds(fake.child.pid) - cpu0.fake) / (DURATION_MS / 1000)) * 100) / 100,
    loadGenCoreUtilisation: Math.round(((selfCpu.user + selfCpu.system) / 1e6 / (DURATION_MS / 1000)) * 100) / 100,
  };

  const peak = peakRssOfPid(server.child.pid as number);
  const e2e = summarize(latencies);
  const overhead = summarize(latencies.map((l) => l - MODEL_MS));
  const sent = Math.floor((DURATION_MS / 1000) * RATE);
  const errors = sent - (statuses['200'] ?? 0);
  server.child.kill('SIGTERM');
  fake.child.kill('SIGTERM');
  await new Promise((r) => server.child.once('exit', r));
  await globalBlob?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  process.stdout.write(
    `${JSON.stringify({
      bench: 'chat',
      target: TARGET,
      ...(values['node-args'] ? { nodeArgs: values['node-args'] } : {}),
      rate: RATE,
      durationS: DURATION_MS / 1000,
      users: USERS,
      corpusChunks: chunks,
      modelMs: MODEL_MS,
      sent,
      statuses,
      errors,
      overheadMs: overhead,
      e2eMs: e2e,
      serverPeakRssMiB: peak,
      ...cpu,
      loadGenPeakRssMiB: peakRssMiB(),
      machine: machine(),
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    })}\n`,
  );
  process.exit(0);
}

void main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  for (const child of started) child.kill('SIGTERM');
  process.exit(1);
});
