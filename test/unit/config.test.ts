import { describe, expect, it } from 'vitest';
import { ConfigError, loadCatalog, loadConfig, modeOf } from '../../src/config';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const AZURE_ENV = {
  WEBSITE_INSTANCE_ID: 'abc',
  MERIDIAN_SERVED_REGIONS: 'westeurope',
  AUTH_AUDIENCE: 'api://meridian',
  AUTH_JWKS_URL: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
  COSMOS_ENDPOINT: 'https://meridian-eu.documents.azure.com',
  SERVICEBUS_NAMESPACE: 'meridian.servicebus.windows.net',
  SEARCH_ENDPOINT: 'https://meridian-westeurope.search.windows.net',
  MERIDIAN_BLOB_URL: 'https://meridianeu.blob.core.windows.net',
  MERIDIAN_GLOBAL_BLOB_URL: 'https://meridianglobal.blob.core.windows.net',
};

describe('loadConfig', () => {
  it('works with no settings at all in local mode: us regions, local tenants, dev secret', () => {
    const c = loadConfig({});
    expect(c.mode).toBe('local');
    expect(c.boundary).toBe('us');
    expect(c.region).toBe('eastus');
    expect(c.servedRegions).toEqual(['eastus', 'westus2']);
    expect(c.tenants.map((t) => t.tenantId).sort()).toEqual([
      'meridian-operators',
      'tenant-acme-corp',
      'tenant-eureka-gmbh',
      'tenant-globex-intl',
    ]);
    expect(c.auth.devSecret).toBeTruthy();
    expect(c.azure).toBeUndefined();
  });

  it('serves the boundary of the first served region, primary first', () => {
    const c = loadConfig({ MERIDIAN_SERVED_REGIONS: 'northeurope,westeurope' });
    expect(c.boundary).toBe('eu');
    expect(c.region).toBe('northeurope');
  });

  it('refuses served regions that span two boundaries', () => {
    expect(() => loadConfig({ MERIDIAN_SERVED_REGIONS: 'eastus,westeurope' })).toThrow(/one process serves one boundary/);
  });

  it('names an unknown region', () => {
    expect(() => loadConfig({ MERIDIAN_SERVED_REGIONS: 'marsnorth' })).toThrow(
      /MERIDIAN_SERVED_REGIONS: unknown region\(s\) marsnorth/,
    );
  });

  it('names an invalid setting', () => {
    expect(() => loadConfig({ MERIDIAN_CLOCK: 'sundial' })).toThrow(/MERIDIAN_CLOCK/);
    expect(() => loadConfig({ MERIDIAN_MAX_BODY_BYTES: 'lots' })).toThrow(/MERIDIAN_MAX_BODY_BYTES/);
    expect(() => loadConfig({ AUTH_DEV_SECRET: 'short' })).toThrow(/AUTH_DEV_SECRET must be at least 32/);
  });

  it('is azure whenever WEBSITE_INSTANCE_ID is set, whatever MERIDIAN_MODE says', () => {
    expect(modeOf({ WEBSITE_INSTANCE_ID: 'x', MERIDIAN_MODE: 'local' })).toBe('azure');
    expect(modeOf({ MERIDIAN_MODE: 'azure' })).toBe('azure');
    expect(modeOf({})).toBe('local');
  });

  it('azure mode has no defaults: every missing endpoint and identity setting is named', () => {
    let message = '';
    try {
      loadConfig({ WEBSITE_INSTANCE_ID: 'abc' });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    for (const name of [
      'MERIDIAN_SERVED_REGIONS',
      'AUTH_AUDIENCE',
      'AUTH_JWKS_URL',
      'COSMOS_ENDPOINT',
      'SERVICEBUS_NAMESPACE',
      'SEARCH_ENDPOINT',
      'MERIDIAN_BLOB_URL',
      'MERIDIAN_GLOBAL_BLOB_URL',
    ]) {
      expect(message).toContain(name);
    }
  });

  it('azure mode refuses a dev secret and never loads the local sample tenants', () => {
    expect(() => loadConfig({ ...AZURE_ENV, AUTH_DEV_SECRET: 'x'.repeat(40) })).toThrow(
      /AUTH_DEV_SECRET must not be set in azure mode/,
    );
    const c = loadConfig(AZURE_ENV);
    expect(c.mode).toBe('azure');
    expect(c.tenants).toEqual([]);
    expect(c.auth.devSecret).toBeUndefined();
    expect(c.boundary).toBe('eu');
  });

  describe('config files', () => {
    function withConfig(mutate: (dir: string) => void): string {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-config-'));
      cpSync(path.join(__dirname, '../../config'), dir, { recursive: true });
      mutate(dir);
      return dir;
    }
    const edit = (dir: string, file: string, f: (json: Record<string, unknown>) => void) => {
      const p = path.join(dir, file);
      const json = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
      f(json);
      writeFileSync(p, JSON.stringify(json));
    };

    it('loads the shipped catalog: 2 boundaries, 4 regions, an index each, a subscription per index', () => {
      const c = loadCatalog();
      expect(c.boundaries).toEqual(['us', 'eu']);
      expect(c.regions.map((r) => `${r.boundary}/${r.name}/${r.index}/${r.primary}`)).toEqual([
        'us/eastus/meridian-eastus/true',
        'us/westus2/meridian-westus2/false',
        'eu/westeurope/meridian-westeurope/true',
        'eu/northeurope/meridian-northeurope/false',
      ]);
      expect(c.topology.subscriptions.map((s) => s.name)).toEqual(c.regions.map((r) => `${r.index}-indexer`));
    });

    it('rejects a region in two boundaries', () => {
      const dir = withConfig((d) =>
        edit(d, 'regions.json', (j) => {
          (j['boundaries'] as { regions: { name: string; index: string }[] }[])[1]?.regions.push({
            name: 'eastus',
            index: 'meridian-x',
          });
        }),
      );
      try {
        expect(() => loadConfig({ MERIDIAN_CONFIG_DIR: dir })).toThrow(/region eastus is in boundaries us and eu/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('rejects unknown fields, bad partition keys and a tenant of an unknown boundary', () => {
      const dir = withConfig((d) => {
        edit(d, 'tenants.local.json', (j) => {
          (j['tenants'] as Record<string, unknown>[]).push({
            tenantId: 'tenant-mars',
            entraTenantId: 'tenant-mars',
            boundary: 'mars',
            monthlyTokenBudget: 1,
            budgetEnforcement: 'soft',
          });
        });
      });
      try {
        expect(() => loadConfig({ MERIDIAN_CONFIG_DIR: dir })).toThrow(/tenant-mars has unknown boundary mars/);
        edit(dir, 'topology.json', (j) => {
          (j['containers'] as Record<string, unknown>[])[0]!['partitionKey'] = 'tenantId';
        });
        expect(() => loadConfig({ MERIDIAN_CONFIG_DIR: dir })).toThrow(/topology\.json: containers\.0\.partitionKey/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const other = withConfig((d) => edit(d, 'deployments.json', (j) => (j['surprise'] = true)));
      try {
        expect(() => loadCatalog(other)).toThrow(/deployments\.json: \(root\): Unrecognized key/);
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    });
  });
});
