/**
 * Configuration, read once. `loadConfig(env)` validates the environment and the files in
 * `config/` with zod and throws a `ConfigError` naming every bad or missing setting, so a
 * misconfigured app fails at start instead of on its first request. `process.env` is read
 * nowhere else in src/ or functions/.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { catalogProblems, rubricSchema, scenarioSchema, type Rubric, type Scenario } from './domain/coaching';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const boundaryName = z.string().regex(/^[a-z][a-z0-9]{1,15}$/, 'a lower-case boundary name');
const regionName = z.string().regex(/^[a-z][a-z0-9]{2,30}$/, 'a lower-case Azure region name');

export const regionsFileSchema = z
  .object({
    $comment: z.string().optional(),
    boundaries: z
      .array(
        z
          .object({
            name: boundaryName,
            regions: z
              .array(z.object({ name: regionName, index: z.string().regex(/^[a-z0-9][a-z0-9-]{1,127}$/) }).strict())
              .min(1),
          })
          .strict(),
      )
      .min(1),
  })
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Map<string, string>();
    const indexes = new Set<string>();
    for (const b of file.boundaries) {
      for (const r of b.regions) {
        const other = seen.get(r.name);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', message: `region ${r.name} is in boundaries ${other} and ${b.name}` });
        }
        seen.set(r.name, b.name);
        if (indexes.has(r.index)) ctx.addIssue({ code: 'custom', message: `index ${r.index} is used twice` });
        indexes.add(r.index);
      }
    }
  });

const containerSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/),
    partitionKey: z.string().regex(/^\/[A-Za-z_][A-Za-z0-9_]*$/),
    /** Cosmos defaultTtl: seconds; -1 = on with no default (per-item ttl); absent = off. */
    ttl: z.number().int().min(-1).optional(),
    excludedPaths: z.array(z.string()).optional(),
    /** Lease prefixes of the change-feed functions watching this container, one per function. */
    leasePrefixes: z
      .array(z.string().regex(/^[a-z][a-z0-9-]{1,62}$/))
      .refine((a) => new Set(a).size === a.length, 'lease prefixes must be distinct')
      .optional(),
  })
  .strict();

const subscriptionSchema = z
  .object({
    name: z.string().min(1).max(50),
    region: regionName,
    filter: z.string().min(1),
    maxDeliveryCount: z.number().int().min(1).max(2000),
    lockDurationSeconds: z.number().int().min(5).max(300),
    deadLetteringOnMessageExpiration: z.boolean(),
    deadLetteringOnFilterEvaluationExceptions: z.boolean(),
  })
  .strict();

export const topologyFileSchema = z
  .object({
    $comment: z.string().optional(),
    topic: z
      .object({
        name: z.string().min(1),
        duplicateDetectionWindowSeconds: z.number().int().min(20),
        defaultMessageTimeToLiveSeconds: z.number().int().min(1),
      })
      .strict(),
    subscriptions: z.array(subscriptionSchema),
    database: z.string().min(1),
    containers: z.array(containerSchema).min(1),
  })
  .strict();

export const deploymentSchema = z
  .object({
    region: regionName,
    purpose: z.enum(['chat', 'reasoning', 'embedding']),
    endpoint: z.url(),
    deployment: z.string().min(1),
    model: z.string().min(1),
    /** Thousands of tokens per minute (Azure OpenAI capacity). */
    tpm: z.number().int().positive(),
    /** 1 is preferred; failover walks up. */
    priority: z.number().int().positive(),
  })
  .strict();

export const deploymentsFileSchema = z
  .object({ $comment: z.string().optional(), deployments: z.array(deploymentSchema) })
  .strict();

export const tenantSchema = z
  .object({
    tenantId: z.string().regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'a lower-case tenant id'),
    entraTenantId: z.string().min(1),
    displayName: z.string().optional(),
    boundary: boundaryName,
    monthlyTokenBudget: z.number().int().nonnegative(),
    budgetEnforcement: z.enum(['soft', 'hard']),
  })
  .strict();

export const tenantsFileSchema = z
  .object({
    $comment: z.string().optional(),
    operatorTenantId: z.string().min(1),
    tenants: z.array(tenantSchema),
  })
  .strict();

export type RegionsFile = z.infer<typeof regionsFileSchema>;
export type TopologyFile = z.infer<typeof topologyFileSchema>;
export type ContainerConfig = z.infer<typeof containerSchema>;
export type SubscriptionConfig = z.infer<typeof subscriptionSchema>;
export type DeploymentConfig = z.infer<typeof deploymentSchema>;
export type TenantConfig = z.infer<typeof tenantSchema>;

export type Mode = 'local' | 'azure';

export interface RegionInfo {
  name: string;
  boundary: string;
  index: string;
  /** Whether it is the first (primary) region of its boundary. */
  primary: boolean;
}

export interface AuthConfig {
  mode: Mode;
  /** Local mode only: the HS256 development secret. */
  devSecret?: string;
  /** Azure mode: expected `aud`. */
  audience?: string;
  /** Azure mode: the Entra JWKS document URL. */
  jwksUrl?: string;
  /** Accepted clock skew in seconds. */
  clockToleranceSeconds: number;
}

export interface Config {
  mode: Mode;
  version: string;
  /** The boundary this process serves (every served region is in it). */
  boundary: string;
  /** The region this process answers as (the first served region). */
  region: string;
  /** Served regions, primary first; the others are failover targets in the same boundary. */
  servedRegions: string[];
  regions: RegionInfo[];
  boundaries: string[];
  topology: TopologyFile;
  deployments: DeploymentConfig[];
  /** Coaching scenarios and evaluation rubrics (config/scenarios, config/rubrics). */
  scenarios: Scenario[];
  rubrics: Rubric[];
  /**
   * Base URL of each region's app (`MERIDIAN_REGION_URLS`), for the 307 that sends a request
   * for a durable instance to its home region. Regions served by this process need none.
   */
  regionUrls: Record<string, string>;
  tenants: TenantConfig[];
  operatorTenantId: string;
  auth: AuthConfig;
  dataDir: string;
  clock: 'system' | 'virtual';
  http: { maxBodyBytes: number; maxDocumentBytes: number; rateLimitPerMinute: number };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Model calls: per-attempt timeout; locally, an optional OpenAI-compatible endpoint. */
  models: {
    timeoutMs: number;
    openAiCompatible?: { baseUrl: string; apiKey?: string; model?: string; embeddingModel?: string };
  };
  /** Chat: response cache lifetime. */
  chat: { cacheTtlSeconds: number };
  /** Azure endpoints; absent in local mode, where devhost provides local ones. */
  azure?: {
    cosmosEndpoint: string;
    serviceBusNamespace: string;
    searchEndpoint: string;
    /** Search endpoint per region of the boundary (the serving region's is `searchEndpoint`). */
    searchEndpoints: Record<string, string>;
    blobUrl: string;
    globalBlobUrl: string;
  };
  /** Local endpoints handed over by devhost (Azurite); absent when the app runs without it. */
  local?: {
    blobUrl?: string;
    globalBlobUrl?: string;
    blobAccount?: string;
  };
}

export type Env = Record<string, string | undefined>;

/** The local-only default HS256 secret; Azure mode refuses any secret at all. */
export const LOCAL_DEV_SECRET = 'meridian-local-development-secret-not-for-production';

/** Finds the folder holding `config/` by walking up from this file (works from src/ and dist/src/). */
export function findConfigDir(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    const candidate = path.join(dir, 'config', 'regions.json');
    if (existsSync(candidate)) return path.join(dir, 'config');
    const parent = path.dirname(dir);
    if (parent === dir) throw new ConfigError(`config/regions.json not found above ${start}`);
    dir = parent;
  }
}

function readJson<T>(file: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file}: cannot be read as JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`${file}: ${formatIssues(parsed.error.issues)}`);
  }
  return parsed.data;
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** The static catalog (regions, topology, deployments) without any environment. */
export interface Catalog {
  regions: RegionInfo[];
  boundaries: string[];
  topology: TopologyFile;
  deployments: DeploymentConfig[];
  /** Coaching scenarios (config/scenarios/*.json). */
  scenarios: Scenario[];
  /** Evaluation rubrics (config/rubrics/*.json). */
  rubrics: Rubric[];
}

/** Every `*.json` of a config subfolder, validated (none when the folder is absent). */
function readJsonDir<T>(dir: string, schema: z.ZodType<T>): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => readJson(path.join(dir, f), schema));
}

export function loadCatalog(configDir: string = findConfigDir()): Catalog {
  const regionsFile = readJson(path.join(configDir, 'regions.json'), regionsFileSchema);
  const topology = readJson(path.join(configDir, 'topology.json'), topologyFileSchema);
  const { deployments } = readJson(path.join(configDir, 'deployments.json'), deploymentsFileSchema);
  const regions: RegionInfo[] = regionsFile.boundaries.flatMap((b) =>
    b.regions.map((r, i) => ({ name: r.name, boundary: b.name, index: r.index, primary: i === 0 })),
  );
  const known = new Set(regions.map((r) => r.name));
  const problems: string[] = [];
  for (const s of topology.subscriptions) {
    if (!known.has(s.region)) problems.push(`topology.json: subscription ${s.name} names unknown region ${s.region}`);
  }
  for (const d of deployments) {
    if (!known.has(d.region)) problems.push(`deployments.json: deployment ${d.deployment} names unknown region ${d.region}`);
  }
  const scenarios = readJsonDir(path.join(configDir, 'scenarios'), scenarioSchema);
  const rubrics = readJsonDir(path.join(configDir, 'rubrics'), rubricSchema);
  problems.push(...catalogProblems(scenarios, rubrics));
  if (problems.length) throw new ConfigError(problems.join('; '));
  return { regions, boundaries: regionsFile.boundaries.map((b) => b.name), topology, deployments, scenarios, rubrics };
}

const envSchema = z.object({
  MERIDIAN_MODE: z.enum(['local', 'azure']).optional(),
  WEBSITE_INSTANCE_ID: z.string().optional(),
  MERIDIAN_SERVED_REGIONS: z.string().optional(),
  MERIDIAN_DATA_DIR: z.string().min(1).optional(),
  MERIDIAN_CONFIG_DIR: z.string().min(1).optional(),
  MERIDIAN_CLOCK: z.enum(['system', 'virtual']).optional(),
  MERIDIAN_VERSION: z.string().optional(),
  MERIDIAN_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(100 * 1024 * 1024)
    .optional(),
  MERIDIAN_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).optional(),
  MERIDIAN_MAX_DOCUMENT_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(100 * 1024 * 1024)
    .optional(),
  AUTH_DEV_SECRET: z.string().optional(),
  AUTH_AUDIENCE: z.string().optional(),
  AUTH_JWKS_URL: z.url().optional(),
  AUTH_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(600).optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).optional(),
  COSMOS_ENDPOINT: z.url().optional(),
  SERVICEBUS_NAMESPACE: z.string().optional(),
  SEARCH_ENDPOINT: z.url().optional(),
  /** `region=https://...,region=https://...`: every search service of the boundary (failover). */
  MERIDIAN_SEARCH_ENDPOINTS: z.string().optional(),
  MERIDIAN_BLOB_URL: z.url().optional(),
  MERIDIAN_GLOBAL_BLOB_URL: z.url().optional(),
  MERIDIAN_BLOB_ACCOUNT: z.string().optional(),
  /** Local mode: an OpenAI-compatible endpoint (Ollama, OpenAI…) instead of the local answerer. */
  MERIDIAN_OPENAI_BASE_URL: z.url().optional(),
  MERIDIAN_OPENAI_API_KEY: z.string().min(1).optional(),
  /** The model name that endpoint expects (default: each deployment's configured model). */
  MERIDIAN_OPENAI_MODEL: z.string().min(1).optional(),
  /**
   * Local mode: also embed (questions and chunks) at MERIDIAN_OPENAI_BASE_URL with this model,
   * asking for 512 dimensions so the local indexes keep their vector size. Unset: the local
   * Universal Sentence Encoder embeds.
   */
  MERIDIAN_OPENAI_EMBEDDING_MODEL: z.string().min(1).optional(),
  /** How long a cached chat answer may be served (seconds). */
  MERIDIAN_CHAT_CACHE_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(30 * 86400)
    .optional(),
  /** Per-attempt timeout of a model call, ms. */
  MERIDIAN_MODEL_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).optional(),
  /** `region=https://...,region=https://...`: each region's app, for 307s to a durable instance's home. */
  MERIDIAN_REGION_URLS: z.string().optional(),
});

function parseRegionUrls(value: string | undefined, catalog: Catalog, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const at = pair.indexOf('=');
    const region = pair.slice(0, at).trim();
    const url = pair.slice(at + 1).trim();
    if (at <= 0 || !catalog.regions.some((r) => r.name === region) || !/^https?:\/\/[^\s]+$/.test(url)) {
      problems.push(`MERIDIAN_REGION_URLS: '${pair}' is not <known region>=<http(s) url>`);
      continue;
    }
    out[region] = url.replace(/\/+$/, '');
  }
  return out;
}

/** Which mode an environment selects: azure whenever running in Azure (WEBSITE_INSTANCE_ID). */
export function modeOf(env: Env): Mode {
  if (env['WEBSITE_INSTANCE_ID']) return 'azure';
  return env['MERIDIAN_MODE'] === 'azure' ? 'azure' : 'local';
}

/** Splits a served-regions list; unset means the `us` boundary's regions (API.md). */
export function parseServedRegions(value: string | undefined, catalog: Catalog): string[] {
  const names = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) {
    return catalog.regions.filter((r) => r.boundary === 'us').map((r) => r.name);
  }
  const unknown = names.filter((n) => !catalog.regions.some((r) => r.name === n));
  if (unknown.length) {
    throw new ConfigError(`MERIDIAN_SERVED_REGIONS: unknown region(s) ${unknown.join(', ')}`);
  }
  return [...new Set(names)];
}

/**
 * Reads and validates the whole configuration for one app process.
 * @throws ConfigError naming every missing or invalid setting.
 */
export function loadConfig(env: Env): Config {
  const parsedEnv = envSchema.safeParse(env);
  if (!parsedEnv.success) throw new ConfigError(`invalid setting(s): ${formatIssues(parsedEnv.error.issues)}`);
  const e = parsedEnv.data;
  const mode = modeOf(env);
  const configDir = e.MERIDIAN_CONFIG_DIR ?? findConfigDir();
  const catalog = loadCatalog(configDir);
  const problems: string[] = [];

  if (mode === 'azure' && !e.MERIDIAN_SERVED_REGIONS) problems.push('MERIDIAN_SERVED_REGIONS is required in azure mode');
  const servedRegions = parseServedRegions(e.MERIDIAN_SERVED_REGIONS, catalog);
  const servedBoundaries = new Set(servedRegions.map((n) => catalog.regions.find((r) => r.name === n)?.boundary));
  if (servedBoundaries.size !== 1) {
    problems.push(`MERIDIAN_SERVED_REGIONS: one process serves one boundary, got ${[...servedBoundaries].join(' and ')}`);
  }
  const region = servedRegions[0] as string;
  const boundary = catalog.regions.find((r) => r.name === region)?.boundary as string;

  const tenantsFile = readJson(path.join(configDir, 'tenants.json'), tenantsFileSchema);
  let tenants = tenantsFile.tenants;
  let operatorTenantId = tenantsFile.operatorTenantId;
  if (mode === 'local') {
    const localFile = path.join(configDir, 'tenants.local.json');
    if (existsSync(localFile)) {
      const local = readJson(localFile, tenantsFileSchema);
      tenants = [...tenants, ...local.tenants];
      operatorTenantId = local.operatorTenantId;
    }
  }
  const ids = new Set<string>();
  for (const t of tenants) {
    if (ids.has(t.tenantId)) problems.push(`tenants: ${t.tenantId} is listed twice`);
    ids.add(t.tenantId);
    if (!catalog.boundaries.includes(t.boundary)) problems.push(`tenants: ${t.tenantId} has unknown boundary ${t.boundary}`);
  }

  const auth: AuthConfig = { mode, clockToleranceSeconds: e.AUTH_CLOCK_TOLERANCE_SECONDS ?? 30 };
  let azure: Config['azure'];
  if (mode === 'azure') {
    if (e.AUTH_DEV_SECRET !== undefined) {
      problems.push('AUTH_DEV_SECRET must not be set in azure mode (HS256 tokens are never accepted there)');
    }
    if (!e.AUTH_AUDIENCE) problems.push('AUTH_AUDIENCE is required in azure mode');
    if (!e.AUTH_JWKS_URL) problems.push('AUTH_JWKS_URL is required in azure mode');
    auth.audience = e.AUTH_AUDIENCE;
    auth.jwksUrl = e.AUTH_JWKS_URL;
    const required = {
      COSMOS_ENDPOINT: e.COSMOS_ENDPOINT,
      SERVICEBUS_NAMESPACE: e.SERVICEBUS_NAMESPACE,
      SEARCH_ENDPOINT: e.SEARCH_ENDPOINT,
      MERIDIAN_BLOB_URL: e.MERIDIAN_BLOB_URL,
      MERIDIAN_GLOBAL_BLOB_URL: e.MERIDIAN_GLOBAL_BLOB_URL,
    };
    for (const [k, v] of Object.entries(required)) if (!v) problems.push(`${k} is required in azure mode`);
    if (e.MERIDIAN_CLOCK === 'virtual') problems.push('MERIDIAN_CLOCK=virtual is local-only');
    const searchEndpoints: Record<string, string> = {};
    for (const pair of (e.MERIDIAN_SEARCH_ENDPOINTS ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      const [name, url] = pair.split('=');
      if (
        !name ||
        !url ||
        !/^https?:\/\//.test(url) ||
        !catalog.regions.some((r) => r.name === name && r.boundary === boundary)
      ) {
        problems.push(`MERIDIAN_SEARCH_ENDPOINTS: "${pair}" is not region=https://... of a region in boundary ${boundary}`);
      } else searchEndpoints[name] = url;
    }
    if (required.SEARCH_ENDPOINT) searchEndpoints[region] = required.SEARCH_ENDPOINT;
    azure = {
      searchEndpoints,
      cosmosEndpoint: required.COSMOS_ENDPOINT ?? '',
      serviceBusNamespace: required.SERVICEBUS_NAMESPACE ?? '',
      searchEndpoint: required.SEARCH_ENDPOINT ?? '',
      blobUrl: required.MERIDIAN_BLOB_URL ?? '',
      globalBlobUrl: required.MERIDIAN_GLOBAL_BLOB_URL ?? '',
    };
  } else {
    auth.devSecret = e.AUTH_DEV_SECRET ?? LOCAL_DEV_SECRET;
    if (auth.devSecret.length < 32) problems.push('AUTH_DEV_SECRET must be at least 32 characters');
  }
  const regionUrls = parseRegionUrls(e.MERIDIAN_REGION_URLS, catalog, problems);
  if (problems.length) throw new ConfigError(problems.join('; '));

  return {
    mode,
    version: e.MERIDIAN_VERSION ?? '0.1.0',
    boundary,
    region,
    servedRegions,
    regions: catalog.regions,
    boundaries: catalog.boundaries,
    topology: catalog.topology,
    deployments: catalog.deployments,
    scenarios: catalog.scenarios,
    rubrics: catalog.rubrics,
    regionUrls,
    tenants,
    operatorTenantId,
    auth,
    dataDir: path.resolve(e.MERIDIAN_DATA_DIR ?? '.data'),
    clock: e.MERIDIAN_CLOCK ?? 'system',
    http: {
      maxBodyBytes: e.MERIDIAN_MAX_BODY_BYTES ?? 16 * 1024 * 1024,
      maxDocumentBytes: e.MERIDIAN_MAX_DOCUMENT_BYTES ?? 10 * 1024 * 1024,
      rateLimitPerMinute: e.MERIDIAN_RATE_LIMIT_PER_MINUTE ?? 500,
    },
    logLevel: e.LOG_LEVEL ?? 'info',
    models: {
      timeoutMs: e.MERIDIAN_MODEL_TIMEOUT_MS ?? 30_000,
      ...(mode === 'local' && e.MERIDIAN_OPENAI_BASE_URL
        ? {
            openAiCompatible: {
              baseUrl: e.MERIDIAN_OPENAI_BASE_URL,
              ...(e.MERIDIAN_OPENAI_API_KEY ? { apiKey: e.MERIDIAN_OPENAI_API_KEY } : {}),
              ...(e.MERIDIAN_OPENAI_MODEL ? { model: e.MERIDIAN_OPENAI_MODEL } : {}),
              ...(e.MERIDIAN_OPENAI_EMBEDDING_MODEL ? { embeddingModel: e.MERIDIAN_OPENAI_EMBEDDING_MODEL } : {}),
            },
          }
        : {}),
    },
    chat: { cacheTtlSeconds: e.MERIDIAN_CHAT_CACHE_TTL_SECONDS ?? 3600 },
    ...(azure ? { azure } : {}),
    ...(mode === 'local'
      ? {
          local: {
            ...(e.MERIDIAN_BLOB_URL ? { blobUrl: e.MERIDIAN_BLOB_URL } : {}),
            ...(e.MERIDIAN_GLOBAL_BLOB_URL ? { globalBlobUrl: e.MERIDIAN_GLOBAL_BLOB_URL } : {}),
            ...(e.MERIDIAN_BLOB_ACCOUNT ? { blobAccount: e.MERIDIAN_BLOB_ACCOUNT } : {}),
          },
        }
      : {}),
  };
}
