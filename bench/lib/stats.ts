/** Small helpers shared by the benchmarks: percentiles, peak RSS, open-loop scheduling. */
import { readFileSync } from 'node:fs';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function summarize(values: number[]): { n: number; p50: number; p95: number; p99: number; max: number; mean: number } {
  const s = [...values].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    n: s.length,
    p50: round(percentile(s, 50)),
    p95: round(percentile(s, 95)),
    p99: round(percentile(s, 99)),
    max: round(s.at(-1) ?? NaN),
    mean: round(s.reduce((a, b) => a + b, 0) / (s.length || 1)),
  };
}

/** Peak resident set size of this process, MiB. */
export function peakRssMiB(): number {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

/** Peak resident set size (VmHWM) of another process, MiB (Linux). */
export function peakRssOfPid(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Open-loop load: calls `send` at `ratePerSecond` for `durationMs`, each call given its
 * scheduled time, regardless of whether earlier calls finished (no coordinated omission).
 * Resolves when every call has settled.
 */
export async function openLoop(options: {
  ratePerSecond: number;
  durationMs: number;
  send: (scheduledAt: number, index: number) => Promise<void>;
}): Promise<void> {
  const interval = 1000 / options.ratePerSecond;
  const total = Math.floor((options.durationMs / 1000) * options.ratePerSecond);
  const start = performance.now() + 20;
  const pending: Promise<void>[] = [];
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && start + i * interval <= now) {
        pending.push(options.send(start + i * interval, i));
        i++;
      }
      if (i >= total) return resolve();
      const wait = start + i * interval - performance.now();
      if (wait > 2) setTimeout(tick, Math.max(0, wait - 1));
      else setImmediate(tick);
    };
    tick();
  });
  await Promise.allSettled(pending);
}

export function machine(): string {
  const os = require('node:os') as typeof import('node:os');
  return `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** p50/p95/p99/max rounded to `digits` (the shape the store, feed and ledger benchmarks print). */
export function summary(values: number[], digits = 3): { p50: number; p95: number; p99: number; max: number } {
  const { p50, p95, p99, max } = summarize(values);
  const round = (v: number): number => Number(v.toFixed(digits));
  return { p50: round(p50), p95: round(p95), p99: round(p99), max: round(max) };
}

/** Peak resident set size of this process in KiB. */
export function peakRssKiB(): number {
  return process.resourceUsage().maxRSS;
}
