/**
 * Runs Azurite's blob service as a child process (it cannot be required in-process), on a
 * free loopback port, persisting under `location`, with its own account name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { AZURITE_DEV_KEY } from '../src/adapters/local/azurite';

export interface RunningAzurite {
  account: string;
  port: number;
  /** Account-scoped blob endpoint, e.g. http://127.0.0.1:10000/meridianus */
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (bind 0, read, close): lets a URL be known before its server is up. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts Azurite without waiting for it: the URL is known at once (a pre-picked port), so
 * callers can overlap its 1.5–3 s start with their own work and await `ready` when they need it.
 */
export async function launchAzurite(options: {
  account: string;
  location: string;
  log?: (line: string) => void;
  startTimeoutMs?: number;
}): Promise<{ account: string; url: string; ready: Promise<RunningAzurite> }> {
  const port = await freePort();
  const ready = startAzurite({ ...options, port });
  ready.catch(() => undefined);
  return { account: options.account, url: `http://127.0.0.1:${port}/${options.account}`, ready };
}

export async function startAzurite(options: {
  account: string;
  location: string;
  /** 0 (default) lets Azurite pick a free port. */
  port?: number;
  log?: (line: string) => void;
  startTimeoutMs?: number;
}): Promise<RunningAzurite> {
  mkdirSync(options.location, { recursive: true });
  const main = require.resolve('azurite/dist/src/blob/main.js');
  const child = spawn(
    process.execPath,
    [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(options.port ?? 0),
      '--location',
      options.location,
      '--disableTelemetry',
      '--silent',
      '--skipApiVersionCheck',
      '--loose',
    ],
    {
      env: { ...process.env, AZURITE_ACCOUNTS: `${options.account}:${AZURITE_DEV_KEY}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Azurite (${options.account}) did not start within ${options.startTimeoutMs ?? 30_000} ms: ${out}`));
    }, options.startTimeoutMs ?? 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
      options.log?.(c.toString().trim());
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite (${options.account}) exited with ${code}: ${out}`));
    });
  });
  child.stdout?.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    account: options.account,
    port,
    url: `http://127.0.0.1:${port}/${options.account}`,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
