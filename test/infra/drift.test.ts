/**
 * config/ ↔ infra/ drift. The app reads config/ (regions.json, topology.json,
 * deployments.json); azd deploys infra/main.bicep with infra/main.parameters.json. This
 * suite fails, naming exactly what disagrees, when they drift apart — and proves it can
 * fail by feeding deliberately drifted copies to the same comparison functions.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Tree } from 'web-tree-sitter';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadCatalog, type Catalog } from '../../src/config';
import { listBicepFiles, parseBicep, readRepoFile, REPO_ROOT } from './bicep';
import {
  checkAzureYaml,
  checkTemplates,
  compareConfigToParameters,
  readInfraParameters,
  type InfraParameters,
  type TemplateSet,
} from './drift';

const catalog: Catalog = loadCatalog(path.join(REPO_ROOT, 'config'));
const parametersFile: unknown = JSON.parse(readRepoFile('infra/main.parameters.json'));
const azureYaml: unknown = parseYaml(readRepoFile('azure.yaml'));
const fileExists = (p: string): boolean => existsSync(path.join(REPO_ROOT, p));

async function loadTemplates(overrides: Record<string, string> = {}): Promise<TemplateSet> {
  const trees = new Map<string, Tree>();
  const sources = new Map<string, string>();
  for (const file of listBicepFiles()) {
    const source = overrides[file] ?? readFileSync(path.join(REPO_ROOT, file), 'utf8');
    sources.set(file, source);
    trees.set(file, await parseBicep(source));
  }
  return { trees, sources, parametersFile };
}

/** A deep copy of the deployed parameters to drift. */
function copy(): InfraParameters {
  return structuredClone(readInfraParameters(parametersFile));
}

describe('infra parameters agree with config/', () => {
  it('main.parameters.json has the config-shaped parameters', () => {
    expect(() => readInfraParameters(parametersFile)).not.toThrow();
  });

  it('regions, boundaries, index names, topic, subscriptions and filters, containers, deployments agree', () => {
    expect(compareConfigToParameters(catalog, readInfraParameters(parametersFile))).toEqual([]);
  });

  it('the Bicep templates hold the prescribed values, app settings, module wiring and no secrets', async () => {
    expect(checkTemplates(await loadTemplates())).toEqual([]);
  });

  it('azure.yaml has one function service per configured region, in its boundary resource group', () => {
    expect(checkAzureYaml(azureYaml, catalog, fileExists)).toEqual([]);
  });
});

describe('the drift check reports drift (drifted copies)', () => {
  const drifted = (mutate: (p: InfraParameters) => void): string[] => {
    const p = copy();
    mutate(p);
    return compareConfigToParameters(catalog, p);
  };

  it('a region missing from a boundary', () => {
    expect(drifted((p) => p.boundaries[0]?.regions.pop())).toContain(
      'boundary us: region westus2: in config/ but missing from infra parameters',
    );
  });

  it('swapped primary region', () => {
    expect(drifted((p) => p.boundaries[1]?.regions.reverse())).toContain(
      'boundary eu: region order is ["westeurope","northeurope"] in config/ but ["northeurope","westeurope"] in infra parameters (the first is the primary)',
    );
  });

  it('an extra boundary', () => {
    const problems = drifted((p) =>
      p.boundaries.push({ name: 'apac', regions: [{ name: 'japaneast', index: 'meridian-japaneast' }] }),
    );
    expect(problems).toContain('boundary apac: in infra parameters but not in config/');
    expect(problems).toContain('region japaneast: has 0 subscriptions in infra parameters, expected exactly 1');
  });

  it('a renamed index', () => {
    expect(
      drifted((p) => {
        const r = p.boundaries[0]?.regions[0];
        if (r) r.index = 'meridian-east';
      }),
    ).toContain('region eastus: index is "meridian-eastus" in config/ but "meridian-east" in infra parameters');
  });

  it('a changed subscription filter', () => {
    const problems = drifted((p) => {
      const s = p.subscriptions.find((x) => x.name === 'meridian-westeurope-indexer');
      if (s) s.filter = "targetRegion = 'us' OR targetRegion = 'all'";
    });
    expect(problems).toContain(
      `subscription meridian-westeurope-indexer: filter is "targetRegion = 'eu' OR targetRegion = 'all'" in config/ but "targetRegion = 'us' OR targetRegion = 'all'" in infra parameters`,
    );
    expect(problems).toContain(
      `subscription meridian-westeurope-indexer: filter "targetRegion = 'us' OR targetRegion = 'all'" does not select region westeurope's boundary; expected "targetRegion = 'eu' OR targetRegion = 'all'"`,
    );
  });

  it('subscription delivery settings and topic settings', () => {
    const problems = drifted((p) => {
      const s = p.subscriptions[0];
      if (s) s.maxDeliveryCount = 10;
      p.topic.duplicateDetectionWindowSeconds = 300;
      p.topic.defaultMessageTimeToLiveSeconds = 7200;
    });
    expect(problems).toContain(
      'subscription meridian-eastus-indexer: maxDeliveryCount is 5 in config/ but 10 in infra parameters',
    );
    expect(problems).toContain('topic: duplicateDetectionWindowSeconds is 600 in config/ but 300 in infra parameters');
    expect(problems).toContain('topic: defaultMessageTimeToLiveSeconds is 3600 in config/ but 7200 in infra parameters');
  });

  it('a missing subscription', () => {
    expect(drifted((p) => p.subscriptions.splice(1, 1))).toEqual(
      expect.arrayContaining([
        'subscription meridian-westus2-indexer: in config/ but missing from infra parameters',
        'region westus2: has 0 subscriptions in infra parameters, expected exactly 1',
      ]),
    );
  });

  it('containers: missing, partition key, TTL on/off, excluded paths', () => {
    const problems = drifted((p) => {
      p.containers = p.containers.filter((c) => c.name !== 'audit');
      for (const c of p.containers) {
        if (c.name === 'document-index') c.partitionKey = '/tenantId';
        if (c.name === 'conversations') c.ttl = 86400;
        if (c.name === 'cache') delete c.ttl;
        if (c.name === 'sessions') delete c.excludedPaths;
      }
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'container audit: in config/ but missing from infra parameters',
        'container document-index: partitionKey is "/id" in config/ but "/tenantId" in infra parameters',
        'container conversations: ttl is 7776000 in config/ but 86400 in infra parameters',
        'container cache: ttl is -1 in config/ but (absent) in infra parameters',
        'container sessions: excludedPaths is ["/transcript/*"] in config/ but [] in infra parameters',
      ]),
    );
  });

  it('the leases container', () => {
    expect(drifted((p) => (p.containers = p.containers.filter((c) => c.name !== 'leases')))).toContain(
      'container leases: missing from infra parameters (change-feed triggers need it)',
    );
  });

  it('deployments: capacity, model, endpoint, missing purpose, global SKU', () => {
    const problems = drifted((p) => {
      for (const d of p.modelDeployments) {
        if (d.region === 'eastus' && d.purpose === 'chat') d.tpm = 50;
        if (d.region === 'westus2' && d.purpose === 'reasoning') d.model = 'o3-mini';
        if (d.region === 'westeurope' && d.purpose === 'embedding') d.endpoint = 'https://other.openai.azure.com';
        if (d.region === 'northeurope' && d.purpose === 'chat') d.sku = 'GlobalStandard';
      }
      p.modelDeployments = p.modelDeployments.filter((d) => !(d.region === 'northeurope' && d.purpose === 'embedding'));
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'deployment eastus/chat: tpm is 200 in config/ but 50 in infra parameters',
        'deployment westus2/reasoning: model is "o4-mini" in config/ but "o3-mini" in infra parameters',
        'deployment westeurope/embedding: endpoint is "https://meridian-oai-westeurope.openai.azure.com" in config/ but "https://other.openai.azure.com" in infra parameters',
        'deployment northeurope/embedding: in config/ but missing from infra parameters',
        'region northeurope: no embedding deployment in infra parameters',
        'deployment northeurope/chat: sku GlobalStandard may process data outside the boundary; use Standard or DataZone*',
      ]),
    );
  });

  it('the database name', () => {
    expect(drifted((p) => (p.database = 'meridian2'))).toContain(
      'cosmos: database is "meridian" in config/ but "meridian2" in infra parameters',
    );
  });
});

describe('the template checks report drift (drifted Bicep copies)', () => {
  let originals: Map<string, string>;
  beforeAll(async () => {
    originals = (await loadTemplates()).sources;
  });
  const edit = (file: string, from: string, to: string): Record<string, string> => {
    const src = originals.get(file) ?? '';
    expect(src).toContain(from);
    return { [file]: src.replace(from, to) };
  };

  it('a changed health probe and consistency level', async () => {
    const problems = checkTemplates(
      await loadTemplates({
        ...edit('infra/modules/frontdoor.bicep', "probePath: '/api/health'", "probePath: '/health'"),
        ...edit('infra/modules/boundary.bicep', "defaultConsistencyLevel: 'Session'", "defaultConsistencyLevel: 'Eventual'"),
      }),
    );
    expect(
      problems.some((p) => /^infra\/modules\/frontdoor\.bicep:\d+: probePath is '\/health', expected "\/api\/health"/.test(p)),
    ).toBe(true);
    expect(
      problems.some((p) =>
        /^infra\/modules\/boundary\.bicep:\d+: defaultConsistencyLevel is 'Eventual', expected "Session"/.test(p),
      ),
    ).toBe(true);
  });

  it('a missing app setting, a forbidden one, shared keys and a key listing', async () => {
    const problems = checkTemplates(
      await loadTemplates({
        ...edit('infra/modules/region.bicep', '    COSMOS_ENDPOINT: cosmosEndpoint\n', "    AUTH_DEV_SECRET: 'x'\n"),
        ...edit('infra/modules/global.bicep', 'allowSharedKeyAccess: false', 'allowSharedKeyAccess: true'),
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'infra/modules/region.bicep: app setting COSMOS_ENDPOINT is missing',
        'infra/modules/region.bicep: app setting AUTH_DEV_SECRET must not be deployed',
        'infra/modules/region.bicep: contains AUTH_DEV_SECRET',
      ]),
    );
    expect(
      problems.some((p) => /^infra\/modules\/global\.bicep:\d+: allowSharedKeyAccess is true, expected false$/.test(p)),
    ).toBe(true);
  });

  it('module wiring: an undeclared param and a missing required one', async () => {
    const problems = checkTemplates(
      await loadTemplates(
        edit('infra/main.bicep', '    sharedBlobContainer: sharedBlobContainer\n', '    sharedContainer: sharedBlobContainer\n'),
      ),
    );
    expect(
      problems.some((p) => /module global passes sharedContainer, which infra\/modules\/global\.bicep does not declare$/.test(p)),
    ).toBe(true);
    expect(
      problems.some((p) =>
        /module global does not pass required param sharedBlobContainer of infra\/modules\/global\.bicep$/.test(p),
      ),
    ).toBe(true);
  });

  it('azure.yaml without a region service or in the wrong resource group', () => {
    const doc = structuredClone(azureYaml) as { services: Record<string, { resourceGroup?: string }> };
    delete doc.services['api-northeurope'];
    const westus2 = doc.services['api-westus2'];
    if (westus2) westus2.resourceGroup = 'rg-${AZURE_ENV_NAME}-eu';
    expect(checkAzureYaml(doc, catalog, fileExists)).toEqual([
      'azure.yaml service api-northeurope: in config/ but missing from azure.yaml',
      'azure.yaml service api-westus2: resourceGroup is "rg-${AZURE_ENV_NAME}-eu", expected "rg-${AZURE_ENV_NAME}-us" (boundary us)',
    ]);
  });
});
