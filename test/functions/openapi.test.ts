import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FunctionHost } from '../../devhost/host';

const ROOT = path.resolve(__dirname, '../..');

interface Operation {
  'x-meridian-planned'?: boolean;
  parameters?: { name?: string; in?: string; $ref?: string }[];
}
type PathItem = Record<string, Operation | unknown> & { parameters?: { name: string; in: string }[] };

/** `documents/{documentId}` → `/api/documents/{documentId}` (constraints and `?`/`*` dropped). */
function toOpenApiPath(route: string): string {
  return `/api/${route.replace(/\{\*?([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\??\}/g, '{$1}')}`;
}

describe('openapi.yaml and the registered HTTP functions agree', () => {
  const registered = new Set<string>();
  let doc: { paths: Record<string, PathItem> };
  beforeAll(async () => {
    // One FunctionHost per process: vitest runs each test file in its own forked worker.
    const host = new FunctionHost({ appDir: ROOT });
    process.env['MERIDIAN_MODE'] = 'local';
    process.env['MERIDIAN_DATA_DIR'] = mkdtempSync(path.join(os.tmpdir(), 'meridian-openapi-'));
    await host.load([path.join(ROOT, 'dist/functions/index.js')]);
    for (const fn of host.functions()) {
      if (fn.trigger.type !== 'httpTrigger') continue;
      const route = String(fn.trigger['route'] ?? fn.name);
      for (const m of (fn.trigger['methods'] as string[] | undefined) ?? ['GET', 'POST']) {
        registered.add(`${m.toUpperCase()} ${toOpenApiPath(route)}`);
      }
    }
    doc = parse(readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8')) as typeof doc;
  });

  const operations = () => {
    const ops: { key: string; planned: boolean; params: string[] }[] = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
        const op = item[method] as Operation | undefined;
        if (!op) continue;
        const params = [...(item.parameters ?? []), ...(op.parameters ?? [])]
          .filter((x) => x.in === 'path')
          .map((x) => x.name ?? '');
        ops.push({ key: `${method.toUpperCase()} ${p}`, planned: op['x-meridian-planned'] === true, params });
      }
    }
    return ops;
  };

  it('registers at least the foundation routes', () => {
    expect([...registered]).toEqual(expect.arrayContaining(['GET /api/healthz', 'GET /api/health', 'GET /api/openapi.yaml']));
  });

  it('documents every registered route and method', () => {
    const documented = new Set(operations().map((o) => o.key));
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
  });

  it('serves every documented operation that is not marked planned, and none that is', () => {
    const ops = operations();
    expect(ops.filter((o) => !o.planned && !registered.has(o.key)).map((o) => o.key)).toEqual([]);
    expect(
      ops.filter((o) => o.planned && registered.has(o.key)).map((o) => `${o.key} is served: drop x-meridian-planned`),
    ).toEqual([]);
  });

  it('declares exactly the path parameters of each path template', () => {
    for (const o of operations()) {
      const fromPath = [...o.key.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(o.params.sort(), o.key).toEqual(fromPath.sort());
    }
  });
});
