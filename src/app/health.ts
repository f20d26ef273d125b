import type { Clock } from '../ports/clock';

export interface HealthCheck {
  name: string;
  boundary: string;
  /** A failing required check makes readiness `down` (503); an optional one `degraded`. */
  required: boolean;
  timeoutMs?: number;
  /** Resolves (optionally with a detail) when healthy; rejects or times out when not. */
  run(): Promise<string | void>;
}

export interface CheckResult {
  name: string;
  boundary: string;
  status: 'ok' | 'down';
  latencyMs: number;
  detail?: string;
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  checks: CheckResult[];
  checkedAt: number;
}

export interface HealthRegistry {
  /** Every adapter adds its readiness check here when it is created. */
  register(check: HealthCheck): void;
  /** Runs all checks in parallel, each under its timeout; cached for `cacheMs`. */
  report(): Promise<HealthReport>;
}

export function createHealthRegistry(options: { clock: Clock; cacheMs?: number; defaultTimeoutMs?: number }): HealthRegistry {
  const checks: HealthCheck[] = [];
  const cacheMs = options.cacheMs ?? 10_000;
  let cached: { at: number; report: Promise<HealthReport> } | undefined;

  async function runOne(check: HealthCheck): Promise<CheckResult> {
    const started = performance.now();
    const timeoutMs = check.timeoutMs ?? options.defaultTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const detail = await Promise.race([
        check.run(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return {
        name: check.name,
        boundary: check.boundary,
        status: 'ok',
        latencyMs: Math.round(performance.now() - started),
        ...(detail ? { detail } : {}),
      };
    } catch (err) {
      return {
        name: check.name,
        boundary: check.boundary,
        status: 'down',
        latencyMs: Math.round(performance.now() - started),
        detail: err instanceof Error ? err.message.slice(0, 200) : 'failed',
      };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    register(check) {
      checks.push(check);
      cached = undefined;
    },
    report() {
      const now = options.clock.now();
      if (cached && now - cached.at < cacheMs) return cached.report;
      const report = Promise.all(checks.map(runOne)).then((results): HealthReport => {
        const failed = results.filter((r) => r.status === 'down');
        const status = failed.some((r) => checks.find((c) => c.name === r.name)?.required)
          ? 'down'
          : failed.length
            ? 'degraded'
            : 'ok';
        return { status, checks: results, checkedAt: now };
      });
      cached = { at: now, report };
      return report;
    },
  };
}
