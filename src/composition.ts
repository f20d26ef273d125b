/**
 * The composition root: the only module that imports adapters. `createDeps(config)` builds
 * everything a function needs for the configured mode; functions get it via `getDeps()`.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { CosmosClient } from '@azure/cosmos';
import { ServiceBusClient } from '@azure/service-bus';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createAuthenticator, createTenantDirectory, type Authenticator, type TenantDirectory } from './app/auth';
import { createHealthRegistry, type HealthRegistry } from './app/health';
import { createJsonLogger } from './app/logging';
import { createStoredSecurityEventSink, SECURITY_EVENTS_CONTAINER } from './app/security-events';
import { loadConfig, type Config } from './config';
import type { BlobStore } from './ports/blob-store';
import type { Clock } from './ports/clock';
import type { DocumentStore } from './ports/document-store';
import type { EventPublisher } from './ports/event-publisher';
import type { Logger } from './ports/logger';
import type { SecurityEventSink } from './ports/security-events';
import type { TokenVerifier } from './ports/token-verifier';
import { AzureBlobStore } from './adapters/azure/azure-blob-store';
import { EntraTokenVerifier } from './adapters/azure/entra-token-verifier';
import { CosmosDocumentStore } from './adapters/azure/cosmos-document-store';
import { ServiceBusEventPublisher } from './adapters/azure/service-bus-event-publisher';
import { openSqliteDocumentStore } from './adapters/local/sqlite-document-store';
import { openLocalServiceBus } from './adapters/local/service-bus';
import { AZURITE_DEV_KEY, AZURITE_GLOBAL_ACCOUNT, azuriteAccountFor } from './adapters/local/azurite';
import { LocalClock } from './adapters/local/clock';
import { DevTokenVerifier } from './adapters/local/dev-token-verifier';

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
  /** Publishes to Service Bus topics (`index-sync`); the local bus under `<data>/global/` locally. */
  events: EventPublisher;
  /** The boundary's blob account (tenant documents); absent locally when no Azurite runs. */
  blobs?: BlobStore;
  /** The global, tenant-free account (shared documents). */
  sharedBlobs?: BlobStore;
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

  const verifier =
    options.verifier ??
    (config.mode === 'azure'
      ? new EntraTokenVerifier({
          audience: config.auth.audience ?? '',
          jwks: config.auth.jwksUrl ?? '',
          isKnownDirectory: (tid) => directory.byDirectoryId(tid) !== undefined,
          clock,
          clockToleranceSeconds: config.auth.clockToleranceSeconds,
        })
      : new DevTokenVerifier(config.auth.devSecret ?? '', clock, config.auth.clockToleranceSeconds));

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
    });
  }
  {
    const store = documents;
    health.register({ name: 'document-store', boundary: config.boundary, required: true, run: () => store.check() });
  }

  let events: EventPublisher;
  if (config.mode === 'azure' && config.azure) {
    events = ServiceBusEventPublisher.fromClient(new ServiceBusClient(config.azure.serviceBusNamespace, azureCredential()));
  } else {
    const bus = openLocalServiceBus({ path: path.join(config.dataDir, 'global', 'bus.sqlite'), clock });
    health.register({ name: 'service-bus', boundary: 'global', required: true, run: () => bus.check() });
    events = bus;
  }

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
    ...(blobs ? { blobs } : {}),
    ...(sharedBlobs ? { sharedBlobs } : {}),
  };
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
