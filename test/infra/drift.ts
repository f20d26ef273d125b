/**
 * Drift between `config/` (what the app reads) and `infra/` (what gets deployed).
 *
 * - `compareConfigToParameters` compares the catalog of config/regions.json, topology.json
 *   and deployments.json with the values in infra/main.parameters.json — the file azd
 *   actually deploys main.bicep with.
 * - `checkTemplates` checks what is written in the Bicep text itself (read from the
 *   tree-sitter parse tree): fixed values that API.md / DESIGN.md prescribe, the app settings
 *   the app reads, module wiring (every passed param declared, every required one passed),
 *   parameters file ↔ main.bicep params, and no secrets.
 * - `checkAzureYaml` checks the azd services (one per configured region) and the hook.
 *
 * Every function returns human-readable problems; an empty list means "in agreement".
 */
import path from 'node:path';
import type { Tree } from 'web-tree-sitter';
import { z } from 'zod';
import type { Catalog } from '../../src/config';
import { codeOnly, declarations, moduleParamUses, objectProperties } from './bicep';

// ---------------------------------------------------------------------------------------
// infra/main.parameters.json
// ---------------------------------------------------------------------------------------

const infraRegion = z.object({ name: z.string(), index: z.string() });
const infraBoundary = z.object({ name: z.string(), regions: z.array(infraRegion) });
const infraTopic = z.object({
  name: z.string(),
  duplicateDetectionWindowSeconds: z.number(),
  defaultMessageTimeToLiveSeconds: z.number(),
});
const infraSubscription = z.object({
  name: z.string(),
  region: z.string(),
  filter: z.string(),
  maxDeliveryCount: z.number(),
  lockDurationSeconds: z.number(),
  deadLetteringOnMessageExpiration: z.boolean(),
  deadLetteringOnFilterEvaluationExceptions: z.boolean(),
});
const infraContainer = z.object({
  name: z.string(),
  partitionKey: z.string(),
  ttl: z.number().optional(),
  excludedPaths: z.array(z.string()).optional(),
});
const infraDeployment = z.object({
  region: z.string(),
  purpose: z.string(),
  endpoint: z.string(),
  deployment: z.string(),
  model: z.string(),
  modelVersion: z.string(),
  sku: z.string(),
  tpm: z.number(),
});

export const infraParametersSchema = z.object({
  boundaries: z.array(infraBoundary),
  topic: infraTopic,
  subscriptions: z.array(infraSubscription),
  database: z.string(),
  containers: z.array(infraContainer),
  modelDeployments: z.array(infraDeployment),
});

export type InfraParameters = z.infer<typeof infraParametersSchema>;

/** The `value` of every parameter of an ARM/azd parameters file. */
export function parameterValues(parametersFile: unknown): Record<string, unknown> {
  const file = z
    .object({ parameters: z.record(z.string(), z.object({ value: z.unknown() }).loose()) })
    .loose()
    .parse(parametersFile);
  return Object.fromEntries(Object.entries(file.parameters).map(([k, v]) => [k, v.value]));
}

/** The config-shaped parameters of infra/main.parameters.json (throws naming bad fields). */
export function readInfraParameters(parametersFile: unknown): InfraParameters {
  const parsed = infraParametersSchema.safeParse(parameterValues(parametersFile));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`infra/main.parameters.json: ${issues}`);
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------
// config ↔ parameters
// ---------------------------------------------------------------------------------------

const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

function diffKeys(what: string, configKeys: string[], infraKeys: string[]): string[] {
  const out: string[] = [];
  const inInfra = new Set(infraKeys);
  const inConfig = new Set(configKeys);
  for (const k of configKeys) if (!inInfra.has(k)) out.push(`${what} ${k}: in config/ but missing from infra parameters`);
  for (const k of infraKeys) if (!inConfig.has(k)) out.push(`${what} ${k}: in infra parameters but not in config/`);
  return out;
}

function diffField(what: string, field: string, configValue: unknown, infraValue: unknown): string[] {
  return JSON.stringify(configValue) === JSON.stringify(infraValue)
    ? []
    : [`${what}: ${field} is ${show(configValue)} in config/ but ${show(infraValue)} in infra parameters`];
}

/** The SQL filter API.md prescribes for a region's subscription. */
export function expectedFilter(boundary: string): string {
  return `targetRegion = '${boundary}' OR targetRegion = 'all'`;
}

const PURPOSES = ['chat', 'reasoning', 'embedding'] as const;

export function compareConfigToParameters(catalog: Catalog, infra: InfraParameters): string[] {
  const problems: string[] = [];

  // Boundaries and regions (order matters: the first region of a boundary is its primary).
  const configBoundaries = catalog.boundaries;
  const infraBoundaries = infra.boundaries.map((b) => b.name);
  problems.push(...diffKeys('boundary', configBoundaries, infraBoundaries));
  for (const b of configBoundaries) {
    const infraB = infra.boundaries.find((x) => x.name === b);
    if (!infraB) continue;
    const configRegions = catalog.regions.filter((r) => r.boundary === b).map((r) => r.name);
    const infraRegions = infraB.regions.map((r) => r.name);
    problems.push(...diffKeys(`boundary ${b}: region`, configRegions, infraRegions));
    if (
      configRegions.length === infraRegions.length &&
      configRegions.every((r) => infraRegions.includes(r)) &&
      configRegions.join() !== infraRegions.join()
    ) {
      problems.push(
        `boundary ${b}: region order is ${show(configRegions)} in config/ but ${show(infraRegions)} in infra parameters (the first is the primary)`,
      );
    }
    for (const r of catalog.regions.filter((x) => x.boundary === b)) {
      const infraR = infraB.regions.find((x) => x.name === r.name);
      if (infraR) problems.push(...diffField(`region ${r.name}`, 'index', r.index, infraR.index));
    }
  }
  const infraRegionBoundary = new Map(infra.boundaries.flatMap((b) => b.regions.map((r) => [r.name, b.name] as const)));

  // Topic.
  for (const field of ['name', 'duplicateDetectionWindowSeconds', 'defaultMessageTimeToLiveSeconds'] as const) {
    problems.push(...diffField('topic', field, catalog.topology.topic[field], infra.topic[field]));
  }

  // Subscriptions (one per index), compared field by field.
  const cfgSubs = catalog.topology.subscriptions;
  problems.push(
    ...diffKeys(
      'subscription',
      cfgSubs.map((s) => s.name),
      infra.subscriptions.map((s) => s.name),
    ),
  );
  for (const s of cfgSubs) {
    const i = infra.subscriptions.find((x) => x.name === s.name);
    if (!i) continue;
    for (const field of [
      'region',
      'filter',
      'maxDeliveryCount',
      'lockDurationSeconds',
      'deadLetteringOnMessageExpiration',
      'deadLetteringOnFilterEvaluationExceptions',
    ] as const) {
      problems.push(...diffField(`subscription ${s.name}`, field, s[field], i[field]));
    }
  }
  // Infra invariants: every region has exactly one subscription, with API.md's filter.
  for (const [region, boundary] of infraRegionBoundary) {
    const subs = infra.subscriptions.filter((s) => s.region === region);
    if (subs.length !== 1) {
      problems.push(`region ${region}: has ${subs.length} subscriptions in infra parameters, expected exactly 1`);
    }
    for (const s of subs) {
      if (s.filter !== expectedFilter(boundary)) {
        problems.push(
          `subscription ${s.name}: filter ${show(s.filter)} does not select region ${region}'s boundary; expected ${show(expectedFilter(boundary))}`,
        );
      }
    }
  }
  for (const s of infra.subscriptions) {
    if (!infraRegionBoundary.has(s.region)) problems.push(`subscription ${s.name}: names unknown region ${s.region}`);
  }

  // Cosmos database and containers.
  problems.push(...diffField('cosmos', 'database', catalog.topology.database, infra.database));
  const cfgContainers = catalog.topology.containers;
  problems.push(
    ...diffKeys(
      'container',
      cfgContainers.map((c) => c.name),
      infra.containers.map((c) => c.name),
    ),
  );
  for (const c of cfgContainers) {
    const i = infra.containers.find((x) => x.name === c.name);
    if (!i) continue;
    problems.push(...diffField(`container ${c.name}`, 'partitionKey', c.partitionKey, i.partitionKey));
    problems.push(...diffField(`container ${c.name}`, 'ttl', c.ttl, i.ttl));
    problems.push(
      ...diffField(
        `container ${c.name}`,
        'excludedPaths',
        [...(c.excludedPaths ?? [])].sort(),
        [...(i.excludedPaths ?? [])].sort(),
      ),
    );
  }
  const leases = infra.containers.find((c) => c.name === 'leases');
  if (!leases) problems.push('container leases: missing from infra parameters (change-feed triggers need it)');
  else if (leases.partitionKey !== '/id')
    problems.push(`container leases: partitionKey must be "/id", is ${show(leases.partitionKey)}`);

  // Model deployments, keyed by region/purpose.
  const key = (d: { region: string; purpose: string }): string => `${d.region}/${d.purpose}`;
  problems.push(...diffKeys('deployment', catalog.deployments.map(key), infra.modelDeployments.map(key)));
  for (const d of catalog.deployments) {
    const i = infra.modelDeployments.find((x) => key(x) === key(d));
    if (!i) continue;
    for (const field of ['deployment', 'model', 'tpm', 'endpoint'] as const) {
      problems.push(...diffField(`deployment ${key(d)}`, field, d[field], i[field]));
    }
  }
  // Infra invariants: each region has all three purposes on one account.
  for (const region of infraRegionBoundary.keys()) {
    const mine = infra.modelDeployments.filter((d) => d.region === region);
    for (const p of PURPOSES) {
      if (!mine.some((d) => d.purpose === p)) problems.push(`region ${region}: no ${p} deployment in infra parameters`);
    }
    const endpoints = [...new Set(mine.map((d) => d.endpoint))];
    if (endpoints.length > 1) {
      problems.push(
        `region ${region}: deployments use several endpoints ${show(endpoints)}; infra creates one account per region`,
      );
    }
    for (const d of mine) {
      if (d.sku.startsWith('Global')) {
        problems.push(`deployment ${key(d)}: sku ${d.sku} may process data outside the boundary; use Standard or DataZone*`);
      }
    }
  }
  for (const d of infra.modelDeployments) {
    if (!infraRegionBoundary.has(d.region)) problems.push(`deployment ${key(d)}: names unknown region ${d.region}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Bicep templates (parse trees)
// ---------------------------------------------------------------------------------------

/** App settings every regional app must get (names src/config.ts and the triggers read). */
export const REQUIRED_APP_SETTINGS = [
  'MERIDIAN_SERVED_REGIONS',
  'MERIDIAN_TASK_HUB',
  'COSMOS_ENDPOINT',
  'SERVICEBUS_NAMESPACE',
  'SEARCH_ENDPOINT',
  'MERIDIAN_BLOB_URL',
  'MERIDIAN_GLOBAL_BLOB_URL',
  'AUTH_AUDIENCE',
  'AUTH_JWKS_URL',
  'AZURE_CLIENT_ID',
  'AzureWebJobsStorage__accountName',
  'AzureWebJobsStorage__credential',
  'AzureWebJobsStorage__clientId',
  'ServiceBusConnection__fullyQualifiedNamespace',
  'CosmosDBConnection__accountEndpoint',
  'BlobStorage__blobServiceUri',
  'BlobStorage__queueServiceUri',
  'GlobalBlobStorage__blobServiceUri',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
] as const;

/** Settings that must never be deployed. */
export const FORBIDDEN_APP_SETTINGS = ['AUTH_DEV_SECRET', 'MERIDIAN_MODE', 'MERIDIAN_CLOCK', 'AzureWebJobsStorage'] as const;

/** Fixed values the design prescribes: file, property, expected literal. */
export const PRESCRIBED_LITERALS: { file: string; key: string; value: string; why: string }[] = [
  { file: 'infra/modules/boundary.bicep', key: 'defaultConsistencyLevel', value: 'Session', why: 'API.md: Session consistency' },
  { file: 'infra/modules/frontdoor.bicep', key: 'probePath', value: '/api/health', why: 'Front Door health probe' },
  { file: 'infra/modules/global.bicep', key: 'filterType', value: 'SqlFilter', why: 'subscriptions use SQL filters' },
  { file: 'infra/modules/region.bicep', key: 'tier', value: 'FlexConsumption', why: 'Flex Consumption plan' },
  {
    file: 'infra/modules/region.bicep',
    key: 'AUTH_JWKS_URL',
    value: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
    why: 'Entra JWKS',
  },
];

/** Fixed non-string values: file, property, expected source text. */
export const PRESCRIBED_VALUES: { file: string; key: string; value: string; why: string }[] = [
  { file: 'infra/modules/boundary.bicep', key: 'enableAutomaticFailover', value: 'true', why: 'failover inside the boundary' },
  { file: 'infra/modules/boundary.bicep', key: 'enableMultipleWriteLocations', value: 'false', why: 'single write region' },
  { file: 'infra/modules/boundary.bicep', key: 'disableLocalAuth', value: 'true', why: 'no Cosmos keys' },
  { file: 'infra/modules/global.bicep', key: 'requiresDuplicateDetection', value: 'true', why: 'duplicate detection' },
  { file: 'infra/modules/global.bicep', key: 'disableLocalAuth', value: 'true', why: 'no Service Bus SAS keys' },
  { file: 'infra/modules/region.bicep', key: 'disableLocalAuth', value: 'true', why: 'no Search / OpenAI keys' },
];

const SECRET_PATTERNS: { pattern: RegExp; what: string }[] = [
  { pattern: /AUTH_DEV_SECRET/, what: 'AUTH_DEV_SECRET' },
  { pattern: /\blistKeys\s*\(|\.listKeys\(|listConnectionStrings|listAdminKeys|listQueryKeys/, what: 'a key listing function' },
  { pattern: /AccountKey=|SharedAccessKey=|api-key/i, what: 'an inline key' },
  { pattern: /@secure\(\)/, what: 'a @secure() parameter (no secrets are passed to templates)' },
];

export interface TemplateSet {
  /** Repo-relative path → parse tree, for every .bicep file. */
  trees: Map<string, Tree>;
  /** Repo-relative path → source text, for every .bicep file. */
  sources: Map<string, string>;
  /** The parsed infra/main.parameters.json. */
  parametersFile: unknown;
}

export function checkTemplates(set: TemplateSet): string[] {
  const problems: string[] = [];
  const props = new Map([...set.trees].map(([file, tree]) => [file, objectProperties(tree)]));

  for (const rule of PRESCRIBED_LITERALS) {
    const found = (props.get(rule.file) ?? []).filter((p) => p.key === rule.key);
    if (found.length === 0) problems.push(`${rule.file}: no ${rule.key} property (${rule.why}: expected ${show(rule.value)})`);
    for (const p of found) {
      if (p.literal !== rule.value) {
        problems.push(`${rule.file}:${p.line}: ${rule.key} is ${p.valueText}, expected ${show(rule.value)} (${rule.why})`);
      }
    }
  }
  for (const rule of PRESCRIBED_VALUES) {
    const found = (props.get(rule.file) ?? []).filter((p) => p.key === rule.key);
    if (found.length === 0) problems.push(`${rule.file}: no ${rule.key} property (${rule.why}: expected ${rule.value})`);
    for (const p of found) {
      if (p.valueText !== rule.value) {
        problems.push(`${rule.file}:${p.line}: ${rule.key} is ${p.valueText}, expected ${rule.value} (${rule.why})`);
      }
    }
  }

  // Storage accounts: no shared keys anywhere.
  for (const [file, list] of props) {
    for (const p of list.filter((x) => x.key === 'allowSharedKeyAccess' && x.valueText !== 'false')) {
      problems.push(`${file}:${p.line}: allowSharedKeyAccess is ${p.valueText}, expected false`);
    }
  }

  // App settings of the regional app.
  const regionProps = props.get('infra/modules/region.bicep') ?? [];
  const keys = new Set(regionProps.map((p) => p.key));
  for (const s of REQUIRED_APP_SETTINGS) {
    if (!keys.has(s)) problems.push(`infra/modules/region.bicep: app setting ${s} is missing`);
  }
  for (const s of FORBIDDEN_APP_SETTINGS) {
    if (keys.has(s)) problems.push(`infra/modules/region.bicep: app setting ${s} must not be deployed`);
  }
  const served = regionProps.find((p) => p.key === 'MERIDIAN_SERVED_REGIONS');
  if (served && served.valueText !== 'region') {
    problems.push(
      `infra/modules/region.bicep:${served.line}: MERIDIAN_SERVED_REGIONS is ${served.valueText}; each app serves its own region (param region)`,
    );
  }

  // No secrets in templates or parameters (code only: comments may name what is forbidden).
  for (const [file, source] of set.sources) {
    const tree = set.trees.get(file);
    const code = tree ? codeOnly(tree, source) : source;
    for (const { pattern, what } of SECRET_PATTERNS) {
      if (pattern.test(code)) problems.push(`${file}: contains ${what}`);
    }
  }
  const parametersText = JSON.stringify(set.parametersFile);
  for (const { pattern, what } of SECRET_PATTERNS) {
    if (pattern.test(parametersText)) problems.push(`infra/main.parameters.json: contains ${what}`);
  }
  const paramNames = Object.keys(parameterValues(set.parametersFile));
  for (const n of paramNames) {
    if (/key|secret|password|token/i.test(n)) problems.push(`infra/main.parameters.json: parameter ${n} looks like a secret`);
  }

  // Module wiring: what Bicep's compiler would check and the grammar cannot.
  for (const [file, tree] of set.trees) {
    for (const use of moduleParamUses(tree)) {
      const target = path.posix.join(path.posix.dirname(file), use.path);
      const targetTree = set.trees.get(target);
      if (!targetTree) {
        problems.push(`${file}:${use.line}: module ${use.module} references ${use.path}, which does not exist`);
        continue;
      }
      const params = declarations(targetTree).filter((d) => d.kind === 'param');
      for (const p of use.params) {
        if (!params.some((d) => d.name === p))
          problems.push(`${file}:${use.line}: module ${use.module} passes ${p}, which ${target} does not declare`);
      }
      for (const d of params) {
        if (!d.optional && !use.params.includes(d.name)) {
          problems.push(`${file}:${use.line}: module ${use.module} does not pass required param ${d.name} of ${target}`);
        }
      }
    }
  }

  // Parameters file ↔ main.bicep params.
  const main = set.trees.get('infra/main.bicep');
  if (!main) problems.push('infra/main.bicep is missing');
  else {
    const declared = declarations(main).filter((d) => d.kind === 'param');
    for (const n of paramNames) {
      if (!declared.some((d) => d.name === n))
        problems.push(`infra/main.parameters.json: ${n} is not a parameter of infra/main.bicep`);
    }
    for (const d of declared) {
      if (!d.optional && !paramNames.includes(d.name)) {
        problems.push(`infra/main.bicep: required parameter ${d.name} has no value in infra/main.parameters.json`);
      }
    }
    const serviceName = objectProperties(main).find((p) => p.key === 'serviceName');
    if (serviceName?.valueText !== "r.name == firstRegion ? 'api' : 'api-${r.name}'") {
      problems.push(
        `infra/main.bicep: the azd service tag rule changed (${serviceName?.valueText ?? 'missing'}); keep it in step with azure.yaml`,
      );
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// azure.yaml
// ---------------------------------------------------------------------------------------

/** The azd service name main.bicep tags each regional app with. */
export function serviceNameFor(region: string, firstRegion: string): string {
  return region === firstRegion ? 'api' : `api-${region}`;
}

export function checkAzureYaml(azureYaml: unknown, catalog: Catalog, fileExists: (p: string) => boolean): string[] {
  const problems: string[] = [];
  const doc = z
    .object({
      infra: z
        .object({ provider: z.string().optional(), path: z.string().optional(), module: z.string().optional() })
        .loose()
        .optional(),
      services: z.record(
        z.string(),
        z.object({ project: z.string(), language: z.string(), host: z.string(), resourceGroup: z.string().optional() }).loose(),
      ),
      hooks: z.record(z.string(), z.unknown()).optional(),
    })
    .loose()
    .safeParse(azureYaml);
  if (!doc.success) return [`azure.yaml: ${doc.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`];
  const { services, hooks, infra } = doc.data;
  if (infra?.path !== 'infra' || infra.module !== 'main') problems.push('azure.yaml: infra must be path infra, module main');
  const firstRegion = catalog.regions[0]?.name ?? '';
  const expected = new Map(catalog.regions.map((r) => [serviceNameFor(r.name, firstRegion), r] as const));
  problems.push(
    ...diffKeys('azure.yaml service', [...expected.keys()], Object.keys(services)).map((p) =>
      p.replace('infra parameters', 'azure.yaml'),
    ),
  );
  for (const [name, r] of expected) {
    const s = services[name];
    if (!s) continue;
    if (s.project !== '.' || s.language !== 'ts' || s.host !== 'function') {
      problems.push(`azure.yaml service ${name}: must be project ".", language ts, host function`);
    }
    const rg = `rg-\${AZURE_ENV_NAME}-${r.boundary}`;
    if (s.resourceGroup !== rg)
      problems.push(
        `azure.yaml service ${name}: resourceGroup is ${show(s.resourceGroup)}, expected ${show(rg)} (boundary ${r.boundary})`,
      );
  }
  const postdeploy = JSON.stringify(hooks?.['postdeploy'] ?? null);
  if (!postdeploy.includes('infra/hooks/postdeploy.sh'))
    problems.push('azure.yaml: postdeploy hook must run infra/hooks/postdeploy.sh');
  if (!fileExists('infra/hooks/postdeploy.sh')) problems.push('infra/hooks/postdeploy.sh is missing');
  return problems;
}
