import { app } from '@azure/functions';
import { createDocuments, type Documents } from '../src/app/documents';
import { getDeps } from '../src/composition';
import { documentContentType, isTier } from '../src/domain/documents';
import { AppError } from '../src/domain/errors';
import { authenticated, readBody, json } from './lib/http';
import { pageOptions, strictQuery } from './lib/query';

let documents: Documents | undefined;
/** The documents use case over this process's deps (also publishes for the sweeps). */
export function useCase(): Documents {
  if (!documents) {
    const deps = getDeps();
    documents = createDocuments({
      documents: deps.documents,
      events: deps.events,
      clock: deps.clock,
      logger: deps.logger,
      boundary: deps.config.boundary,
      maxDocumentBytes: deps.config.http.maxDocumentBytes,
      ...(deps.blobs ? { blobs: deps.blobs } : {}),
      ...(deps.sharedBlobs ? { sharedBlobs: deps.sharedBlobs } : {}),
    });
  }
  return documents;
}

export const uploadDocument = authenticated({}, async ({ req, deps, principal }) => {
  const query = strictQuery(req, ['name', 'tier', 'scope']);
  const tier = query.get('tier');
  if (!isTier(tier)) throw new AppError('validation_failed', 'tier must be one of upload, policy, kb, training, archive.');
  const scope = query.get('scope');
  if (scope !== null && scope !== 'shared') throw new AppError('validation_failed', 'scope may only be "shared".');
  const contentType = documentContentType(req.headers.get('content-type'));
  if (!contentType) {
    throw new AppError(
      'unsupported_media_type',
      'Content-Type must be text/plain, text/markdown, text/html, application/json or application/pdf.',
    );
  }
  const bytes = await readBody(req, deps.config.http.maxDocumentBytes, 'Documents');
  const result = await useCase().upload(principal, {
    name: query.get('name'),
    tier,
    scope: scope === 'shared' ? 'shared' : 'tenant',
    contentType,
    bytes,
  });
  return json(202, result);
});

export const listDocuments = authenticated({}, async ({ req, principal }) => {
  strictQuery(req, ['limit', 'continuationToken']);
  return json(200, await useCase().list(principal, pageOptions(req)));
});

export const getDocument = authenticated({}, async ({ req, principal }) => {
  strictQuery(req, []);
  return json(200, await useCase().get(principal, req.params['documentId'] ?? ''));
});

export const deleteDocument = authenticated({}, async ({ req, principal }) => {
  strictQuery(req, []);
  await useCase().remove(principal, req.params['documentId'] ?? '');
  return { status: 202 };
});

app.http('uploadDocument', { methods: ['POST'], route: 'documents', handler: uploadDocument });
app.http('listDocuments', { methods: ['GET'], route: 'documents', handler: listDocuments });
app.http('getDocument', { methods: ['GET'], route: 'documents/{documentId}', handler: getDocument });
app.http('deleteDocument', { methods: ['DELETE'], route: 'documents/{documentId}', handler: deleteDocument });

/** Blob created or replaced → one `index-sync` upsert (Event Grid source in Azure; devhost polls). */
app.storageBlob('publishDocumentChange', {
  path: 'documents/{name}',
  connection: 'BlobStorage',
  source: 'EventGrid',
  handler: async (_blob, context) => {
    await useCase().publishBlobChange('tenant', String(context.triggerMetadata?.['name'] ?? ''));
  },
});

/** Every boundary app watches the shared container; duplicate publishes collapse by messageId. */
app.storageBlob('publishSharedDocumentChange', {
  path: 'shared/{name}',
  connection: 'GlobalBlobStorage',
  source: 'EventGrid',
  handler: async (_blob, context) => {
    await useCase().publishBlobChange('shared', String(context.triggerMetadata?.['name'] ?? ''));
  },
});
