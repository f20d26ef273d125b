import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

/** Builds a throwaway tree with the project's layer rules and runs dependency-cruiser on it. */
function cruise(files: Record<string, string>): { status: number | null; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-layers-'));
  dirs.push(dir);
  copyFileSync(path.join(ROOT, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true } }),
  );
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  const roots = ['src', 'functions'].filter((d) => Object.keys(files).some((f) => f.startsWith(`${d}/`)));
  const r = spawnSync(process.execPath, [CLI, '--config', '.dependency-cruiser.cjs', ...roots], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const adapter = { 'src/adapters/local/thing.ts': 'export const thing = 1;\n' };

describe('layer rules (npm run lint)', () => {
  it('pass for a tree that respects them', () => {
    const r = cruise({
      ...adapter,
      'src/domain/rules.ts': 'export const rule = 1;\n',
      'src/app/use-case.ts': "import { rule } from '../domain/rules';\nexport const useCase = rule;\n",
      'src/composition.ts': "import { thing } from './adapters/local/thing';\nexport const deps = thing;\n",
      'functions/fn.ts': "import { deps } from '../src/composition';\nexport const fn = deps;\n",
    });
    expect(r.output).toContain('no dependency violations');
    expect(r.status).toBe(0);
  });

  it('fail when src/domain imports an adapter', () => {
    const r = cruise({
      ...adapter,
      'src/domain/rules.ts': "import { thing } from '../adapters/local/thing';\nexport const rule = thing;\n",
    });
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('domain-is-pure');
  });

  it('fail when a function file imports an adapter directly', () => {
    const r = cruise({
      ...adapter,
      'functions/fn.ts': "import { thing } from '../src/adapters/local/thing';\nexport const fn = thing;\n",
    });
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('only-composition-imports-adapters');
  });

  it('fail when src/app imports node:fs or an Azure SDK', () => {
    const r = cruise({ 'src/app/use-case.ts': "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n" });
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('app-has-no-adapters-or-sdks');
  });
});
