/**
 * Regional indexing: one `index-sync` subscription per served region's index (in Azure each
 * regional app serves its own region, so one indexer), its dead-letter queue, the search API,
 * index sweeps per staleness tier, and index status.
 */
import { app, type InvocationContext } from '@azure/functions';
import { useCase as documentsUseCase } from './documents';
import { createIndexer, type DeliveryInfo, type Indexer } from '../src/app/indexer';
import { createSweeps, type Sweeps } from '../src/app/sweeps';
import { getDeps } from '../src/composition';
import { TIER_BOUNDS, TIERS } from '../src/domain/documents';
import { AppError } from '../src/domain/errors';
import { authenticated, json } from './lib/http';
import { guardRate } from './lib/model-limits';
import { strictQuery } from './lib/query';
import { retrievalOf } from './lib/use-cases';

const deps = getDeps();

const indexers = new Map<string, Indexer>();
function indexerFor(region: string): Indexer {
  let indexer = indexers.get(region);
  if (!indexer) {
    const target = deps.searchIndexes.find((s) => s.region === region);
    if (!target) throw new Error(`no search index configured for ${region}`);
    indexer = createIndexer(
      {
        documents: deps.documents,
        extractor: deps.extractor,
        embedder: deps.embedder,
        countTokens: deps.countTokens,
        clock: deps.clock,
        logger: deps.logger,
        boundary: deps.config.boundary,
        ...(deps.blobs ? { blobs: deps.blobs } : {}),
        ...(deps.sharedBlobs ? { sharedBlobs: deps.sharedBlobs } : {}),
      },
      target,
    );
    indexers.set(region, indexer);
  }
  return indexer;
}

let sweeps: Sweeps | undefined;
const useSweeps = () =>
  (sweeps ??= createSweeps({
    documents: deps.documents,
    searchIndexes: deps.searchIndexes,
    publisher: documentsUseCase(),
    clock: deps.clock,
    logger: deps.logger,
    boundary: deps.config.boundary,
    ...(deps.blobs ? { blobs: deps.blobs } : {}),
    ...(deps.sharedBlobs ? { sharedBlobs: deps.sharedBlobs } : {}),
  }));

/** Message id and delivery count from the Service Bus trigger's metadata (camel-cased by the library). */
function deliveryOf(context: InvocationContext): DeliveryInfo {
  const meta = context.triggerMetadata ?? {};
  const messageId = meta['messageId'];
  const deliveryCount = Number(meta['deliveryCount']);
  return {
    ...(typeof messageId === 'string' ? { messageId } : {}),
    ...(Number.isInteger(deliveryCount) ? { deliveryCount } : {}),
  };
}

/**
 * Why a message was dead-lettered. Service Bus keeps the reason and description as application
 * properties of the dead-lettered message; the extension's trigger metadata has no key of its
 * own for them, and the library camel-cases nested keys (`applicationProperties.deadLetterReason`).
 */
function deadLetterOf(context: InvocationContext): { reason: string; description?: string } {
  const props = context.triggerMetadata?.['applicationProperties'];
  const p = typeof props === 'object' && props !== null ? (props as Record<string, unknown>) : {};
  const reason = p['deadLetterReason'];
  const description = p['deadLetterErrorDescription'];
  return {
    reason: typeof reason === 'string' && reason !== '' ? reason : 'unknown',
    ...(typeof description === 'string' && description !== '' ? { description } : {}),
  };
}

for (const { region, index } of deps.searchIndexes) {
  const subscription = `${index.name}-indexer`;
  app.serviceBusTopic(`indexer-${region}`, {
    connection: 'ServiceBusConnection',
    topicName: 'index-sync',
    subscriptionName: subscription,
    // Returning completes the message, throwing abandons it: the binding offers no dead-letter
    // with a reason, so a malformed message comes back as `rejected` (recorded with its reason
    // by the indexer) and is completed rather than retried to MaxDeliveryCountExceeded.
    handler: async (message: unknown, context: InvocationContext) => {
      const outcome = await indexerFor(region).handle(message, deliveryOf(context));
      context.debug(`index ${index.name}: ${outcome.result}`);
    },
  });
  app.serviceBusTopic(`indexer-${region}-dead-letters`, {
    connection: 'ServiceBusConnection',
    topicName: 'index-sync',
    subscriptionName: `${subscription}/$DeadLetterQueue`,
    handler: async (message: unknown, context: InvocationContext) => {
      const { reason, description } = deadLetterOf(context);
      await indexerFor(region).handleDeadLetter(message, reason, description, deliveryOf(context));
    },
  });
}

for (const tier of TIERS) {
  app.timer(`sweep-${tier}`, {
    schedule: TIER_BOUNDS[tier].sweepSchedule,
    handler: async () => {
      await useSweeps().run(tier, `${tier}-${deps.clock.now().toString(36)}`);
    },
  });
}

export const search = authenticated({}, async ({ req, principal }) => {
  const query = strictQuery(req, ['q', 'top']);
  const q = query.get('q')?.trim() ?? '';
  if (q.length < 1 || q.length > 1000) throw new AppError('validation_failed', 'q must be 1 to 1000 characters.');
  const top = query.get('top') === null ? 5 : Number(query.get('top'));
  if (!Number.isInteger(top) || top < 1 || top > 50)
    throw new AppError('validation_failed', 'top must be an integer from 1 to 50.');
  guardRate(deps, principal); // a new query is an embedding-model call
  const hits = await retrievalOf(deps).search(principal.tenantId, q, top);
  return json(200, {
    results: hits.map((h) => ({
      documentId: h.documentId,
      name: h.documentName,
      chunkId: h.chunkId,
      content: h.content,
      score: h.score,
    })),
  });
});

export const indexStatus = authenticated({ roles: ['platform-admin'], crossBoundary: true }, async ({ req }) => {
  strictQuery(req, ['boundary']);
  return json(200, await useSweeps().status());
});

app.http('search', { methods: ['GET'], route: 'search', handler: search });
app.http('indexStatus', { methods: ['GET'], route: 'index/status', handler: indexStatus });
