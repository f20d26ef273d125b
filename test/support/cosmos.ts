/**
 * Cosmos test helpers: an in-process `@vercel/cosmosdb-server` and container creation.
 * Creating containers is a test concern only: in Azure, infra creates them (DESIGN.md).
 */
import type { AddressInfo } from 'node:net';
import { CosmosClient } from '@azure/cosmos';
import { createHttpServer } from '@vercel/cosmosdb-server';
import type { ContainerConfig } from '../../src/config';

/** The documented, public Cosmos DB emulator key (not a secret). */
export const EMULATOR_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

export async function startCosmosServer(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function cosmosClient(endpoint: string, key: string = EMULATOR_KEY): CosmosClient {
  return new CosmosClient({ endpoint, key, connectionPolicy: { enableEndpointDiscovery: false } });
}

/** Creates the database and containers if missing (tests only). */
export async function ensureContainers(
  client: CosmosClient,
  databaseId: string,
  containers: readonly ContainerConfig[],
): Promise<void> {
  const { database } = await client.databases.createIfNotExists({ id: databaseId });
  for (const c of containers) {
    await database.containers.createIfNotExists({
      id: c.name,
      partitionKey: { paths: [c.partitionKey] },
      ...(c.ttl === undefined ? {} : { defaultTtl: c.ttl }),
    });
  }
}
