import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');

/** Every `connection: '<name>'` a function file declares. */
function connectionNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/connection:\s*'([A-Za-z0-9_]+)'/g)) names.add(m[1] as string);
    }
  };
  walk(path.join(ROOT, 'functions'));
  return names;
}

describe('trigger connections and the Function App settings agree', () => {
  it('gives every connection a function names identity-based settings in infra (no connection strings)', () => {
    const bicep = readFileSync(path.join(ROOT, 'infra/modules/region.bicep'), 'utf8');
    const names = connectionNames();
    expect([...names].sort()).toEqual(
      expect.arrayContaining(['BlobStorage', 'CosmosDBConnection', 'GlobalBlobStorage', 'ServiceBusConnection']),
    );
    for (const name of names) {
      expect(bicep, `${name} has no settings in region.bicep`).toMatch(
        new RegExp(`\\b${name}__(blobServiceUri|fullyQualifiedNamespace|accountEndpoint)\\b`),
      );
      expect(bicep, `${name} must use the managed identity`).toMatch(new RegExp(`\\b${name}__credential: 'managedidentity'`));
    }
  });
});
