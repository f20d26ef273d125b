import { app } from '@azure/functions';
import { isPlatformAdmin } from '../src/domain/tenancy';
import { anonymous, json, optionallyAuthenticated } from './lib/http';

/** Liveness: no dependency calls. */
export const healthz = anonymous(async () => json(200, { status: 'ok' }, { 'cache-control': 'no-store' }));

/** Readiness: every adapter's check (cached ≤ 10 s); details only for platform-admins. */
export const health = optionallyAuthenticated({ crossBoundary: true }, async ({ deps, principal }) => {
  const report = await deps.health.report();
  const status = report.status === 'down' ? 503 : 200;
  const headers = { 'cache-control': 'no-store' };
  if (!principal || !isPlatformAdmin(principal)) return json(status, { status: report.status }, headers);
  return json(
    status,
    {
      status: report.status,
      region: deps.config.region,
      boundary: deps.config.boundary,
      version: deps.config.version,
      checkedAt: new Date(report.checkedAt).toISOString(),
      checks: report.checks,
    },
    headers,
  );
});

app.http('healthz', { methods: ['GET'], route: 'healthz', handler: healthz });
app.http('health', { methods: ['GET'], route: 'health', handler: health });
