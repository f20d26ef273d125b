import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCatalog } from '../../src/config';
import { LocalServiceBus } from '../../src/adapters/local/service-bus';

export class VirtualClock {
  constructor(public t = Date.UTC(2025, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export const repoRoot = path.resolve(__dirname, '../..');
export const topology = loadCatalog(path.join(repoRoot, 'config')).topology;

/** A temp dir per test, removed by the returned cleanup. */
export function tempDir(prefix = 'meridian-bus-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openBus(dir: string, clock: { now(): number }): LocalServiceBus {
  return new LocalServiceBus({ path: path.join(dir, 'global', 'bus.sqlite'), clock });
}
