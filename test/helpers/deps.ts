import { HttpRequest, InvocationContext, type HttpHandler, type HttpResponseInit } from '@azure/functions';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Env } from '../../src/config';
import { createDeps, setDepsForTesting, type Deps } from '../../src/composition';

/**
 * Local-mode deps with no Azurite (no blob checks), a fresh temporary data dir (SQLite
 * document store and bus), logs captured in memory.
 */
export function testDeps(env: Env = {}): Deps & { logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'meridian-test-deps-'));
  const deps = createDeps(loadConfig({ MERIDIAN_MODE: 'local', MERIDIAN_DATA_DIR: dataDir, ...env }), {
    logSink: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  setDepsForTesting(deps);
  return Object.assign(deps, { logs });
}

export async function call(
  handler: HttpHandler,
  init: { method?: string; url: string; headers?: Record<string, string>; body?: string; params?: Record<string, string> },
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const req = new HttpRequest({
    method: init.method ?? 'GET',
    url: init.url,
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: { string: init.body } } : {}),
    params: init.params ?? {},
  });
  const res = (await handler(req, new InvocationContext({ functionName: 'test' }))) as HttpResponseInit;
  const headers = new Headers(res.headers as ConstructorParameters<typeof Headers>[0]);
  const body = res.jsonBody ?? (typeof res.body === 'string' ? res.body : undefined);
  return { status: res.status ?? 200, headers, body };
}
