/**
 * The composition root: the only module that imports adapters. `createDeps(config)` builds
 * everything a function needs for the configured mode; functions get it via `getDeps()`.
 */
import { DefaultAzureCredential, getBearerTokenProvider, type TokenCredential } from '@azure/identity';
import { CosmosClient } from '@azure/cosmos';
import { ServiceBusClient } from '@azure/service-bus';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createAuthenticator, createTenantDirectory, type Authenticator, type TenantDirectory } from './app/auth';
import { createHealthRegistry, type HealthRegistry } from './app/health';
import { createJsonLogger } from './app/logging';
import { createModelGateway, deploymentsInBoundary, type ModelGateway } from './app/model-gateway';
import { createBudgetGuard } from './app/usage-ledger';
import { createStoredSecurityEventSink, SECURITY_EVENTS_CONTAINER } from './app/security-events';
import { loadConfig, type Config, type RegionInfo } from './config';
import type { BlobStore } from './ports/blob-store';
import type { ChatModel } from './ports/chat-model';
import type { Clock } from './ports/clock';
import type { DocumentStore } from './ports/document-store';
import type { Embedder } from './ports/embedder';
import type { SearchIndex } from './ports/search-index';
import type { TextExtractor } from './ports/text-extractor';
import type { TokenCounter } from './domain/chunking';
import { createCachedEmbedder } from './app/embedding-cache';
import { MemoryEmbeddingCache } from './app/memory-embedding-cache';
import { createCachingVerifier } from './app/verified-token-cache';
import { createDocumentEmbeddingCache } from './app/document-embedding-cache';
import type { EventPublisher } from './ports/event-publisher';
import type { Logger } from './ports/logger';
import type { SecurityEventSink } from './ports/security-events';
import type { TokenVerifier } from './ports/token-verifier';
import { AzureBlobStore } from './adapters/azure/azure-blob-store';
import { EntraTokenVerifier } from './adapters/azure/entra-token-verifier';
import { CosmosDocumentStore } from './adapters/azure/cosmos-document-store';
import { ServiceBusEventPublisher } from './adapters/azure/service-bus-event-publisher';
import { BACKGROUND_CHECKPOINT_MS, openSqliteDocumentStore } from './adapters/local/sqlite-document-store';
import { AzureOpenAiEmbedder } from './adapters/azure/azure-openai-embedder';
import { AzureSearchIndex } from './adapters/azure/azure-search-index';
import { LocalSearchIndex } from './adapters/local/search-index';
import { SqliteEmbeddingCache } from './adapters/local/sqlite-embedding-cache';
import { IsolatedTextExtractor } from './adapters/local/isolated-text-extractor';
import { countTokens } from './adapters/local/token-counter';
import { LocalUseEmbedder, USE_DIMENSIONS } from './adapters/local/use-embedder';
import { openLocalServiceBus } from './adapters/local/service-bus';
import { AZURITE_DEV_KEY, AZURITE_GLOBAL_ACCOUNT, azuriteAccountFor } from './adapters/local/azurite';
import { LocalClock } from './adapters/local/clock';
import { DevTokenVerifier } from './adapters/local/dev-token-verifier';
import { LocalChatModel } from './adapters/local/local-chat-model';
import { AzureOpenAiChatModel } from './adapters/azure/azure-openai-chat-model';
import { OpenAiCompatibleChatModel } from './adapters/openai/openai-chat-model';
import { OpenAiCompatibleEmbedder } from './adapters/openai/openai-embedder';
import { createRateLimiter, type RateLimiter } from './app/rate-limiter';
import type { BudgetGuard } from './ports/budget';

/** API.md: 403 refusals are kept 30 days (the container's default TTL). */
const SECURITY_EVENT_TTL_SECONDS = 30 * 24 * 3600;

export interface Deps {
  config: Config;
  clock: Clock;
  logger: Logger;
  directory: TenantDirectory;
  auth: Authenticator;
  health: HealthRegistry;
  securityEvents: SecurityEventSink;
  /** The boundary's Cosmos DB account (database `meridian`); SQLite under `<data>/<boundary>/` locally. */
  documents: DocumentStore;
  /**
   * One search index per served region, the serving (primary) region first: this app indexes
   * them (index-sync subscriptions, sweeps) and searches them.
   */
  searchIndexes: { region: string; primary: boolean; index: SearchIndex }[];
  /**
   * The boundary's other regions' indexes, which this app only reads: retrieval falls back to
   * them when its own fail. In Azure each regional app serves its own region (it has Search
   * Index Data Reader on the others, infra/modules/region-roles.bicep); locally one process
   * serves every region of its boundary, so this is empty there.
   */
  failoverSearchIndexes: { region: string; index: SearchIndex }[];
  /** Embeddings for chunks, cached by content hash (shared by the boundary's indexes). */
  embedder: Embedder;
  /** Embeddings for questions: the same model, cached in process only (bounded LRU). */
  queryEmbedder: Embedder;
  extractor: TextExtractor;
  countTokens: TokenCounter;
  /** Publishes to Service Bus topics (`index-sync`); the local bus under `<data>/global/` locally. */
  events: EventPublisher;
  /** The boundary's blob account (tenant documents); absent locally when no Azurite runs. */
  blobs?: BlobStore;
  /** The global, tenant-free account (shared documents). */
  sharedBlobs?: BlobStore;
  /**
   * Chat through the model gateway over this boundary's `chat` deployments (serving region
   * first, failover inside the boundary only). Local mode: LocalChatModel per deployment, or
   * the OpenAI-compatible endpoint of MERIDIAN_OPENAI_BASE_URL.
   */
  chat: ModelGateway;
  /** The per-user limit every model-calling route shares (chat, session messages, evaluate). */
  rateLimiter: RateLimiter;
  /** Hard monthly budgets of model-calling routes. */
  budget: BudgetGuard;
  /** The gateway over this boundary's `reasoning` deployments (evaluations), built like `chat`. */
  reasoning: ModelGateway;
  /**
   * Who scores evaluation criteria: `model` (the reasoning gateway, JSON verdicts) or
   * `local-heuristic` (src/domain/evaluation.ts) when the reasoning deployments are the local
   * stand-in, which is no judge.
   */
  evaluator: 'model' | 'local-heuristic';
}

/** The `BudgetGuard` port over the usage ledger's monthly totals (hard enforcement only). */
function ledgerBudget(documents: DocumentStore, clock: Clock, directory: TenantDirectory): BudgetGuard {
  const guard = createBudgetGuard({ documents, clock, directory });
  return { assertWithinBudget: (tenant) => guard.assertWithinBudget(tenant.tenantId) };
}

export interface CreateDepsOptions {
  /** Where log lines go (stdout by default). */
  logSink?: (line: string) => void;
  /** Override the token verifier (tests of azure mode use a local JWKS). */
  verifier?: TokenVerifier;
  credential?: TokenCredential;
}

export function createDeps(config: Config, options: CreateDepsOptions = {}): Deps {
  const clock = new LocalClock();
  const logger = createJsonLogger({
    clock,
    level: config.logLevel,
    sink: options.logSink ?? ((line) => process.stdout.write(`${line}\n`)),
    fields: { region: config.region, boundary: config.boundary },
  });
  const directory = createTenantDirectory(config.tenants, config.operatorTenantId);
  let credential: TokenCredential | undefined = options.credential;
  const azureCredential = (): TokenCredential => (credential ??= new DefaultAzureCredential());

  const verifier = createCachingVerifier(
    options.verifier ??
      (config.mode === 'azure'
        ? new EntraTokenVerifier({
            audience: config.auth.audience ?? '',
            jwks: config.auth.jwksUrl ?? '',
            isKnownDirectory: (tid) => directory.byDirectoryId(tid) !== undefined,
            clock,
            clockToleranceSeconds: config.auth.clockToleranceSeconds,
          })
        : new DevTokenVerifier(config.auth.devSecret ?? '', clock, config.auth.clockToleranceSeconds)),
    clock,
  );

  const health = createHealthRegistry({ clock });
  const auth = createAuthenticator({ verifier, directory, boundary: config.boundary });

  let blobs: BlobStore | undefined;
  let sharedBlobs: BlobStore | undefined;
  if (config.mode === 'azure' && config.azure) {
    blobs = AzureBlobStore.withCredential(config.azure.blobUrl, azureCredential());
    sharedBlobs = AzureBlobStore.withCredential(config.azure.globalBlobUrl, azureCredential());
  } else if (config.local?.blobUrl) {
    blobs = AzureBlobStore.withAccountKey(config.local.blobUrl, azuriteAccountFor(config.boundary), AZURITE_DEV_KEY);
    if (config.local.globalBlobUrl) {
      sharedBlobs = AzureBlobStore.withAccountKey(config.local.globalBlobUrl, AZURITE_GLOBAL_ACCOUNT, AZURITE_DEV_KEY);
    }
  }
  if (blobs) {
    const store = blobs;
    health.register({ name: 'blob-storage', boundary: config.boundary, required: true, run: () => store.check() });
  }
  if (sharedBlobs) {
    const store = sharedBlobs;
    health.register({ name: 'shared-blob-storage', boundary: 'global', required: false, run: () => store.check() });
  }

  let documents: DocumentStore;
  if (config.mode === 'azure' && config.azure) {
    documents = new CosmosDocumentStore({
      client: new CosmosClient({ endpoint: config.azure.cosmosEndpoint, aadCredentials: azureCredential() }),
      databaseId: config.topology.database,
      containers: config.topology.containers,
      ownsClient: true,
    });
  } else {
    documents = openSqliteDocumentStore({
      path: path.join(config.dataDir, config.boundary, 'documents.sqlite'),
      containers: config.topology.containers,
      clock,
      backgroundCheckpointMs: BACKGROUND_CHECKPOINT_MS,
    });
  }
  {
    const store = documents;
    health.register({ name: 'document-store', boundary: config.boundary, required: true, run: () => store.check() });
  }

  let embedder: Embedder;
  let queryEmbedder: Embedder;
  let searchIndexes: Deps['searchIndexes'];
  let failoverSearchIndexes: Deps['failoverSearchIndexes'] = [];
  const servedIndexes = config.servedRegions.map((name) => config.regions.find((r) => r.name === name)!);
  if (config.mode === 'azure' && config.azure) {
    const azure = config.azure;
    const embedding = config.deployments.find((d) => d.region === config.region && d.purpose === 'embedding');
    if (!embedding) throw new Error(`config/deployments.json has no embedding deployment in ${config.region}`);
    const tokenProvider = getBearerTokenProvider(azureCredential(), 'https://cognitiveservices.azure.com/.default');
    const azureEmbedder = new AzureOpenAiEmbedder({
      endpoint: embedding.endpoint,
      deployment: embedding.deployment,
      model: embedding.model,
      dimensions: 1536,
      auth: { azureADTokenProvider: tokenProvider },
    });
    embedder = createCachedEmbedder(azureEmbedder, createDocumentEmbeddingCache(documents));
    queryEmbedder = createCachedEmbedder(azureEmbedder, new MemoryEmbeddingCache());
    const azureIndex = (r: RegionInfo) =>
      new AzureSearchIndex({
        endpoint: azure.searchEndpoints[r.name] as string,
        indexName: r.index,
        dimensions: 1536,
        credential: azureCredential(),
        clock,
      });
    searchIndexes = servedIndexes
      .filter((r) => azure.searchEndpoints[r.name])
      .map((r) => ({ region: r.name, primary: r.name === config.region, index: azureIndex(r) }));
    // config checked that every endpoint named is a region of this boundary.
    failoverSearchIndexes = config.regions
      .filter((r) => r.boundary === config.boundary && !config.servedRegions.includes(r.name) && azure.searchEndpoints[r.name])
      .map((r) => ({ region: r.name, index: azureIndex(r) }));
  } else {
    const compatible = config.models.openAiCompatible;
    // The local indexes hold USE vectors (512); an OpenAI-compatible model is asked for as many.
    const local: Embedder = compatible?.embeddingModel
      ? new OpenAiCompatibleEmbedder({
          baseURL: compatible.baseUrl,
          model: compatible.embeddingModel,
          dimensions: USE_DIMENSIONS,
          timeoutMs: config.models.timeoutMs,
          ...(compatible.apiKey ? { apiKey: compatible.apiKey } : {}),
        })
      : new LocalUseEmbedder();
    embedder = createCachedEmbedder(
      local,
      new SqliteEmbeddingCache(path.join(config.dataDir, config.boundary, 'embeddings.sqlite')),
    );
    queryEmbedder = createCachedEmbedder(local, new MemoryEmbeddingCache());
    searchIndexes = servedIndexes.map((r) => ({
      region: r.name,
      primary: r.name === config.region,
      index: new LocalSearchIndex({
        file: LocalSearchIndex.pathFor(config.dataDir, config.boundary, r.index),
        name: r.index,
        dimensions: local.dimensions,
      }),
    }));
  }
  for (const s of [...searchIndexes, ...failoverSearchIndexes.map((f) => ({ ...f, primary: false }))]) {
    health.register({
      name: `search:${s.index.name}`,
      boundary: config.boundary,
      required: s.primary,
      run: () => s.index.check(),
    });
  }

  let events: EventPublisher;
  if (config.mode === 'azure' && config.azure) {
    events = ServiceBusEventPublisher.fromClient(new ServiceBusClient(config.azure.serviceBusNamespace, azureCredential()));
  } else {
    const bus = openLocalServiceBus({ path: path.join(config.dataDir, 'global', 'bus.sqlite'), clock });
    health.register({ name: 'service-bus', boundary: 'global', required: true, run: () => bus.check() });
    events = bus;
  }

  const chat = createGateway(config, clock, azureCredential, 'chat');
  health.register({ name: 'chat-models', boundary: config.boundary, required: false, run: () => chat.check() });
  const reasoning = createGateway(config, clock, azureCredential, 'reasoning');
  health.register({ name: 'reasoning-models', boundary: config.boundary, required: false, run: () => reasoning.check() });
  const evaluator = config.mode === 'local' && !config.models.openAiCompatible ? 'local-heuristic' : 'model';

  const securityEvents: SecurityEventSink = createStoredSecurityEventSink({
    documents,
    clock,
    logger,
    config,
    ttlSeconds: config.topology.containers.find((c) => c.name === SECURITY_EVENTS_CONTAINER)?.ttl ?? SECURITY_EVENT_TTL_SECONDS,
    newId: randomUUID,
  });

  return {
    config,
    clock,
    logger,
    directory,
    auth,
    health,
    securityEvents,
    events,
    documents,
    searchIndexes,
    failoverSearchIndexes,
    embedder,
    queryEmbedder,
    extractor: new IsolatedTextExtractor(),
    countTokens,
    chat,
    rateLimiter: createRateLimiter({ clock, limit: config.http.rateLimitPerMinute, windowMs: 60_000 }),
    budget: ledgerBudget(documents, clock, directory),
    reasoning,
    evaluator,
    ...(blobs ? { blobs } : {}),
    ...(sharedBlobs ? { sharedBlobs } : {}),
  };
}

/** The gateway over the served boundary's deployments of one purpose, each built for the mode. */
function createGateway(
  config: Config,
  clock: Clock,
  azureCredential: () => TokenCredential,
  purpose: 'chat' | 'reasoning',
): ModelGateway {
  const boundaryOf = (region: string): string | undefined => config.regions.find((r) => r.name === region)?.boundary;
  const configured = deploymentsInBoundary(config.deployments, boundaryOf, config.boundary, purpose);
  const compatible = config.models.openAiCompatible;
  return createModelGateway({
    servingRegion: config.region,
    boundary: config.boundary,
    clock,
    deployments: configured.map((d) => {
      let model: ChatModel;
      if (config.mode === 'azure') {
        model = new AzureOpenAiChatModel({
          region: d.region,
          endpoint: d.endpoint,
          deployment: d.deployment,
          model: d.model,
          credential: azureCredential(),
          timeoutMs: config.models.timeoutMs,
          clock,
        });
      } else if (compatible) {
        model = new OpenAiCompatibleChatModel({
          region: d.region,
          deployment: d.deployment,
          model: compatible.model ?? d.model,
          baseURL: compatible.baseUrl,
          ...(compatible.apiKey ? { apiKey: compatible.apiKey } : {}),
          timeoutMs: config.models.timeoutMs,
          clock,
        });
      } else {
        model = new LocalChatModel({ region: d.region, deployment: d.deployment });
      }
      return { region: d.region, boundary: config.boundary, deployment: d.deployment, priority: d.priority, chat: model };
    }),
  });
}

let memo: Deps | undefined;

/** The process's deps, built once from the environment (the only read of process.env). */
export function getDeps(): Deps {
  memo ??= createDeps(loadConfig(process.env));
  return memo;
}

/** Tests: run function handlers against deps built by hand (undefined resets). */
export function setDepsForTesting(deps: Deps | undefined): void {
  memo = deps;
}
