import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Loads `local.settings.json` Values into the environment without overriding what is already
 * set (as Core Tools does). Returns the names it set.
 */
export function loadLocalSettings(appDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const file = path.join(appDir, 'local.settings.json');
  if (!existsSync(file)) return [];
  let parsed: { Values?: Record<string, unknown> };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> };
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const set: string[] = [];
  for (const [k, v] of Object.entries(parsed.Values ?? {})) {
    if (env[k] === undefined && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
      env[k] = String(v);
      set.push(k);
    }
  }
  return set;
}

/** The repository root (where package.json and config/ live), from dist/devhost or devhost/. */
export function appRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'config'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No app root above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

export function routePrefixOf(appDir: string): string {
  try {
    const host = JSON.parse(readFileSync(path.join(appDir, 'host.json'), 'utf8')) as {
      extensions?: { http?: { routePrefix?: string } };
    };
    return host.extensions?.http?.routePrefix ?? 'api';
  } catch {
    return 'api';
  }
}
