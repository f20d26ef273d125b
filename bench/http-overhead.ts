/**
 * bench/http-overhead — what devhost's dispatch adds over a bare node:http server running the
 * same handler (the app's real `healthz`). Open-loop at RATE requests/s for DURATION seconds
 * on loopback, latency measured from each request's scheduled send time; the server runs on
 * core 0 and this load generator on core 1 (`taskset`). Goal: median added ≤ 1 ms.
 *
 *   npm run build && taskset -c 1 node dist/bench/http-overhead.js [--rate 1000] [--duration 20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { machine, openLoop, peakRssMiB, peakRssOfPid, summarize } from './lib/stats';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
  },
});
const RATE = Number(values.rate);
const DURATION_MS = Number(values.duration) * 1000;
const WARMUP_MS = Number(values.warmup) * 1000;

async function startServer(mode: 'devhost' | 'bare'): Promise<{ child: ChildProcess; port: number }> {
  const script = path.join(__dirname, 'http-overhead-server.js');
  const child = spawn('taskset', ['-c', '0', process.execPath, script, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited ${code}: ${out}`)));
  });
  return { child, port };
}

async function measure(mode: 'devhost' | 'bare') {
  const { child, port } = await startServer(mode);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const latencies: number[] = [];
  let errors = 0;
  const send = (record: boolean) => (scheduledAt: number) =>
    new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/healthz', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) errors++;
          else if (record) latencies.push(performance.now() - scheduledAt);
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
    });
  await openLoop({ ratePerSecond: RATE, durationMs: WARMUP_MS, send: send(false) });
  await openLoop({ ratePerSecond: RATE, durationMs: DURATION_MS, send: send(true) });
  const serverPeakRssMiB = child.pid ? peakRssOfPid(child.pid) : undefined;
  agent.destroy();
  child.kill('SIGTERM');
  return { mode, ...summarize(latencies), errors, serverPeakRssMiB };
}

async function main(): Promise<void> {
  const bare = await measure('bare');
  const devhost = await measure('devhost');
  const result = {
    bench: 'http-overhead',
    rate: RATE,
    durationSeconds: DURATION_MS / 1000,
    bare,
    devhost,
    addedMedianMs: Math.round((devhost.p50 - bare.p50) * 1000) / 1000,
    addedP99Ms: Math.round((devhost.p99 - bare.p99) * 1000) / 1000,
    goal: 'added median <= 1 ms',
    met: devhost.p50 - bare.p50 <= 1 && devhost.errors === 0 && bare.errors === 0,
    loadGeneratorPeakRssMiB: peakRssMiB(),
    machine: machine(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

void main();
