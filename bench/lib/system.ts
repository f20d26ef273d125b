/**
 * Starts the whole local system the way `npm start` does (dist/devhost/main.js) on PORT=0 with
 * its own data dir, and stops it. Shared by the end-to-end tests (test/e2e/harness.ts) and the
 * benchmarks that drive the real system. Requires a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appRoot } from '../../devhost/settings';

export const ROOT = appRoot();

export interface RunningSystem {
  url: string;
  dataDir: string;
  output: () => string;
  child: ChildProcess;
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /** Reuse this data dir (a restart) instead of a new temporary one. */
  dataDir?: string;
  /** Leave the data dir on stop (to start again on it); the caller removes it. */
  keepDataDir?: boolean;
  /** Extra node flags for the main process; its forked boundary processes inherit them (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export async function startSystem(
  env: Record<string, string> = {},
  timeoutMs = 90_000,
  options: StartOptions = {},
): Promise<RunningSystem> {
  const main = path.join(ROOT, 'dist/devhost/main.js');
  if (!existsSync(main)) throw new Error('dist/ is missing: run `npm run build` (npm test does) first');
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'meridian-e2e-'));
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), main], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', MERIDIAN_DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`system did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const poll = setInterval(() => {
      const m = /front door listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    }, 25);
    void exited.then((code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`system exited with ${code} before it was up:\n${out}`));
    });
  });
  return {
    url,
    dataDir,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/**
 * PIDs of live processes (other than this one) whose command line or environment mentions
 * `needle`, optionally only those whose command line also contains `command` (Linux /proc).
 */
export function processesMentioning(needle: string, command?: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (Number(entry) === process.pid || (command !== undefined && !cmd.includes(command))) continue;
      if (cmd.includes(needle) || environ.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}
