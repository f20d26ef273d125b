/**
 * CI's Bicep syntax gate: every .bicep file under infra/ is parsed with a real Bicep grammar
 * (tree-sitter-bicep, wasm) and must have no ERROR or MISSING node. The grammar itself is
 * checked first: it must reject broken snippets (with a line:column) and accept valid ones,
 * so a grammar that accepted anything could not make this suite pass.
 */
import { describe, expect, it } from 'vitest';
import { checkBicepSource, listBicepFiles, readRepoFile } from './bicep';

describe('the Bicep grammar (tree-sitter-bicep wasm)', () => {
  it('accepts valid Bicep using the constructs infra/ relies on', async () => {
    const valid = [
      "targetScope = 'subscription'",
      'type regionType = { name: string, index: string, ttl: int? }',
      '@minLength(1)',
      'param boundaries array',
      "param sku string = 'basic'",
      'var regions = flatten(map(boundaries, b => map(b.regions, (r, i) => { name: r.name, primary: i == 0 })))',
      "resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = [for b in boundaries: {",
      "  name: 'rg-${b.name}'",
      "  location: 'eastus'",
      '}]',
      "output names string = join(map(regions, r => r.name), ' ')",
      '',
    ].join('\n');
    expect(await checkBicepSource(valid, 'valid.bicep')).toEqual([]);
  });

  it.each([
    [
      'an unclosed object',
      "resource sa 'Microsoft.Storage/storageAccounts@2024-01-01' = {\n  name: 'x'\n  location: 'eastus'\n",
      'unclosed.bicep',
    ],
    ['a property without a value', 'var x = {\n  name:\n}\n', 'novalue.bicep'],
    [
      'a resource type in double quotes',
      'resource sa "Microsoft.Storage/storageAccounts@2024-01-01" = {\n  name: \'x\'\n}\n',
      'quotes.bicep',
    ],
    ['a stray operator', 'param a string\nvar b = a +\noutput c string = b\n', 'stray.bicep'],
    ['an unterminated string', "var a = 'abc\nvar b = 1\n", 'string.bicep'],
  ])('rejects %s with a file:line:column', async (_what, source, label) => {
    const problems = await checkBicepSource(source, label);
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(new RegExp(`^${label.replace('.', '\\.')}:\\d+:\\d+: `));
  });

  it('locates the error on the right line', async () => {
    const source =
      "param a string\nparam b int = 3\nresource x 'Microsoft.Foo/bars@2024-01-01' = {\n  name: a\n  properties: {\n    value: b +\n  }\n}\n";
    const problems = await checkBicepSource(source, 'lines.bicep');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => /^lines\.bicep:[67]:\d+: /.test(p))).toBe(true);
  });
});

describe('infra/**/*.bicep', () => {
  const files = listBicepFiles();

  it('has main.bicep and the modules', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'infra/main.bicep',
        'infra/modules/boundary.bicep',
        'infra/modules/region.bicep',
        'infra/modules/region-roles.bicep',
        'infra/modules/global.bicep',
        'infra/modules/global-roles.bicep',
        'infra/modules/frontdoor.bicep',
      ]),
    );
  });

  it.each(files)('%s parses without syntax errors', async (file) => {
    expect(await checkBicepSource(readRepoFile(file), file)).toEqual([]);
  });
});
