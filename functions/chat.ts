/**
 * POST /api/chat (JSON, or SSE with `Accept: text/event-stream`) and
 * GET /api/conversations/{conversationId}. The use case is src/app/chat.ts.
 */
import { app } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { createChat, MAX_MESSAGE_CHARS, type Chat, type ChatStreamItem } from '../src/app/chat';
import { toProblem } from '../src/app/problem';
import { createResponseCache } from '../src/app/response-cache';
import { getDeps, type Deps } from '../src/composition';
import type { Logger } from '../src/ports/logger';
import { authenticated, json, readJson } from './lib/http';
import { strictQuery } from './lib/query';
import { retrievalOf } from './lib/use-cases';

let chat: { deps: Deps; chat: Chat } | undefined;
function useCase(): Chat {
  const deps = getDeps();
  if (chat?.deps !== deps) {
    chat = {
      deps,
      chat: createChat({
        documents: deps.documents,
        retrieval: retrievalOf(deps),
        model: deps.chat,
        countTokens: deps.countTokens,
        clock: deps.clock,
        logger: deps.logger,
        cache: createResponseCache({
          documents: deps.documents,
          clock: deps.clock,
          ttlSeconds: deps.config.chat.cacheTtlSeconds,
        }),
        rateLimiter: deps.rateLimiter,
        budget: deps.budget,
        tenantOf: (id) => deps.directory.byTenantId(id),
        newId: randomUUID,
        ...(deps.blobs ? { blobs: deps.blobs } : {}),
      }),
    };
  }
  return chat.chat;
}

const chatBody = z
  .object({
    message: z.string().min(1).max(MAX_MESSAGE_CHARS),
    conversationId: z.string().min(1).max(128).optional(),
  })
  .strict();

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The rest of a started stream as SSE; a failure after the first delta becomes `event: error`. */
async function* sseEvents(
  first: ChatStreamItem,
  rest: AsyncIterator<ChatStreamItem>,
  requestId: string,
  log: Logger,
): AsyncGenerator<string> {
  let item: ChatStreamItem | undefined = first;
  try {
    while (item) {
      if (item.type === 'delta') yield sse('delta', { text: item.text });
      else {
        yield sse('done', item.answer);
        return;
      }
      const next = await rest.next();
      item = next.done ? undefined : next.value;
    }
  } catch (err) {
    const problem = toProblem(err, requestId);
    if (problem.status >= 500) log.error('chat stream failed after its first delta', { err });
    yield sse('error', problem.body);
  } finally {
    // The client went away (or the stream ended): let the model stream release its connection.
    await rest.return?.();
  }
}

export const postChat = authenticated({}, async ({ req, principal, context, requestId, log }) => {
  strictQuery(req, []);
  const body = await readJson(req, chatBody);
  const call = { requestId, invocationId: context.invocationId };
  const input = { message: body.message, ...(body.conversationId ? { conversationId: body.conversationId } : {}) };
  if (!/\btext\/event-stream\b/i.test(req.headers.get('accept') ?? '')) {
    return json(200, await useCase().ask(principal, input, call));
  }
  const stream = useCase().askStream(principal, input, call);
  // Everything up to the first delta (auth, 404, 429, retrieval, failover) still answers with a status.
  const first = await stream.next();
  if (first.done) throw new Error('chat stream ended without an answer');
  return {
    status: 200,
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
    body: Readable.from(sseEvents(first.value, stream, requestId, log)),
  };
});

export const getConversation = authenticated({}, async ({ req, principal }) => {
  strictQuery(req, []);
  return json(200, await useCase().conversation(principal, req.params['conversationId'] ?? ''));
});

app.http('chat', { methods: ['POST'], route: 'chat', handler: postChat });
app.http('getConversation', { methods: ['GET'], route: 'conversations/{conversationId}', handler: getConversation });
