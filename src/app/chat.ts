/**
 * Grounded chat (issue 6): one question in, an answer with citations out.
 *
 *   rate limit (per user) → budget (hard tenants) → the conversation (owner only, else 404)
 *   → response cache (tenant + shared indexVersion, normalised question, history)
 *   → retrieval (tenant + shared, `deleting` excluded, boundary fallback)
 *   → prompt within the token budget → model gateway → citations of real retrieved chunks
 *   → one usage event per model call → both messages persisted → cache fill.
 *
 * Token counts: passages carry the count stored at indexing; stored messages carry theirs
 * (user: counted once when asked; assistant: the model's completion tokens), so per request
 * only the new question is tokenized.
 *
 * A cache hit calls no model and writes no usage event; it is served only while every
 * document it cites still exists and is not being deleted (a deletion marks `deleting` at
 * once but bumps the index version only when the indexer has removed the chunks).
 */
import { SHARED_TENANT } from '../domain/documents';
import { usageOf, type ChatCompletion, type ChatRequest, type ModelInfo } from '../domain/chat';
import { AppError } from '../domain/errors';
import { assemblePrompt, extractCitations, SYSTEM_RULES, USER_MESSAGE_FRAME, type HistoryTurn } from '../domain/prompt';
import type { ResponseCacheKeyInput } from '../domain/response-cache-key';
import type { Principal, Tenant } from '../domain/tenancy';
import type { BlobStore } from '../ports/blob-store';
import type { BudgetGuard } from '../ports/budget';
import type { ChatModel } from '../ports/chat-model';
import type { Clock } from '../ports/clock';
import type { DocumentStore, Stored } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import { CATALOG } from './documents';
import { INDEX_VERSION_ID } from './indexer';
import { documentWrites, type OptimisticUpdater } from './optimistic-update';
import type { RateLimiter } from './rate-limiter';
import type { CachedAnswer, ResponseCache } from './response-cache';
import { catalogRowOf, type Retrieval } from './search';
import { recordUsage as recordUsageEvent } from './usage-events';

export const CONVERSATIONS = 'conversations';
export const USAGE = 'usage';

/** Oldest messages beyond this are dropped from the stored conversation (item size stays far below 2 MiB). */
export const MAX_STORED_MESSAGES = 200;
export const MAX_MESSAGE_CHARS = 8000;

export interface Citation {
  documentId: string;
  name: string;
  chunkId: string;
}

export interface ChatAnswer {
  conversationId: string;
  messageId: string;
  answer: string;
  citations: Citation[];
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  model: { region: string; deployment: string; local?: boolean };
  cached: boolean;
}

export interface StoredMessage {
  messageId: string;
  role: 'user' | 'assistant';
  content: string;
  createdAt: string;
  /** Tokens of `content` (o200k), so history is never re-tokenized. */
  tokens: number;
  citations?: Citation[];
}

export interface ConversationItem {
  id: string;
  tenantId: string;
  kind: 'conversation';
  ownerId: string;
  createdAt: string;
  updatedAt: string;
  messages: StoredMessage[];
  [property: string]: unknown;
}

import type { UsageEvent } from '../domain/usage-ledger';
export type { UsageEvent };

/** The invocation a request runs in: ids for logs and the usage event's exactly-once key. */
export interface CallContext {
  requestId: string;
  /** The server's invocation id (never the client's request id). */
  invocationId: string;
}

export interface ChatInput {
  message: string;
  conversationId?: string;
}

export type ChatStreamItem = { type: 'delta'; text: string } | { type: 'done'; answer: ChatAnswer };

export interface ChatDeps {
  documents: DocumentStore;
  /** Appends to a conversation in turn; default the process's queue. */
  updater?: OptimisticUpdater;
  retrieval: Pick<Retrieval, 'search'>;
  model: ChatModel;
  countTokens: (text: string) => number;
  clock: Clock;
  logger: Logger;
  cache: ResponseCache<CachedAnswer>;
  rateLimiter: RateLimiter;
  budget: BudgetGuard;
  tenantOf: (tenantId: string) => Tenant | undefined;
  newId: () => string;
  /** The boundary's blob account: the usage outbox when `usage` cannot take an event. */
  blobs?: BlobStore;
  options?: {
    /** Passages retrieved per question (default 5). */
    top?: number;
    /** Prompt budget (default 6,000 tokens). */
    maxPromptTokens?: number;
    /** History's share of it (default 2,000 tokens). */
    maxHistoryTokens?: number;
    /** Completion cap (default 800 tokens). */
    maxAnswerTokens?: number;
  };
}

/** What a cache entry keeps besides the answer: its documents' partitions, to re-check them on a hit. */
interface ChatCacheValue extends CachedAnswer {
  /** The cited documents' ids. */
  sources?: string[];
}

interface Prepared {
  principal: Principal;
  conversationId: string;
  conversation: Stored<ConversationItem> | undefined;
  question: string;
  questionTokens: number;
  cacheInput: ResponseCacheKeyInput;
  cached?: ChatCacheValue;
  request?: ChatRequest;
  /** The prompt's tokens by the assembler's count (the model reports its own when it finishes). */
  promptTokens?: number;
  /** chunk id → where it came from. */
  sources?: Map<string, { documentId: string; name: string }>;
}

export function createChat(deps: ChatDeps) {
  const top = deps.options?.top ?? 5;
  const maxPromptTokens = deps.options?.maxPromptTokens ?? 6000;
  const maxHistoryTokens = deps.options?.maxHistoryTokens ?? 2000;
  const maxAnswerTokens = deps.options?.maxAnswerTokens ?? 800;
  // Constant parts of every prompt, counted once per process.
  const constantTokens = [SYSTEM_RULES, USER_MESSAGE_FRAME].map((text) => [text, deps.countTokens(text)] as const);
  const iso = () => new Date(deps.clock.now()).toISOString();
  const updater = deps.updater ?? documentWrites;

  async function indexVersion(partition: string): Promise<number> {
    const row = await deps.documents.read<{ id: string; value?: number }>(CATALOG, partition, INDEX_VERSION_ID);
    return typeof row?.value === 'number' ? row.value : 0;
  }

  /**
   * The caller's own conversation.
   * @throws AppError `not_found` when absent or owned by another user (another tenant's lives
   *   in another partition, so it is simply absent).
   */
  async function loadConversation(principal: Principal, conversationId: string): Promise<Stored<ConversationItem>> {
    const item = await deps.documents.read<ConversationItem>(CONVERSATIONS, principal.tenantId, conversationId);
    if (!item || item.kind !== 'conversation' || item.ownerId !== principal.userId) {
      throw new AppError('not_found', 'No such conversation.');
    }
    return item;
  }

  /** Cited documents still there and not being deleted (a cache hit must not outlive them). */
  async function stillCitable(tenantId: string, value: ChatCacheValue): Promise<boolean> {
    for (const documentId of value.sources ?? []) {
      const row = await catalogRowOf(deps.documents, tenantId, documentId);
      if (!row || row.kind !== 'document' || row.status === 'deleting') return false;
    }
    return true;
  }

  async function prepare(principal: Principal, input: ChatInput): Promise<Prepared> {
    const question = input.message.trim();
    if (question === '') throw new AppError('validation_failed', 'message must not be empty.');
    if (question.length > MAX_MESSAGE_CHARS)
      throw new AppError('validation_failed', `message must be at most ${MAX_MESSAGE_CHARS} characters.`);

    deps.rateLimiter.enforce(`${principal.tenantId}/${principal.userId}`);
    const tenant = deps.tenantOf(principal.tenantId);
    if (!tenant) throw new AppError('unauthorized', 'The token is not from a tenant of this service.');
    await deps.budget.assertWithinBudget(tenant, deps.clock.now());

    const conversation = input.conversationId ? await loadConversation(principal, input.conversationId) : undefined;
    const conversationId = conversation?.id ?? `c${deps.newId().replace(/-/g, '')}`;
    const history: HistoryTurn[] = (conversation?.messages ?? []).map((m) => ({ role: m.role, content: m.content }));

    const [tenantVersion, sharedVersion] = await Promise.all([indexVersion(principal.tenantId), indexVersion(SHARED_TENANT)]);
    const cacheInput: ResponseCacheKeyInput = {
      tenantId: principal.tenantId,
      question,
      context: history,
      indexVersion: tenantVersion,
      sharedIndexVersion: sharedVersion,
    };
    const questionTokens = deps.countTokens(question);
    const base = { principal, conversationId, conversation, question, questionTokens, cacheInput };

    try {
      const hit = await deps.cache.get(cacheInput);
      if (hit && (await stillCitable(principal.tenantId, hit.value))) return { ...base, cached: hit.value };
    } catch (err) {
      deps.logger.warn('response cache unreadable; answering without it', { err });
    }

    const hits = await deps.retrieval.search(principal.tenantId, question, top);
    // History turns were counted when stored, the constant parts once per process, the
    // question above: nothing is tokenized twice.
    const known = new Map<string, number>(constantTokens);
    for (const m of conversation?.messages ?? []) known.set(m.content, m.tokens);
    const prompt = assemblePrompt({
      question,
      history,
      passages: hits.map((h) => ({ id: h.chunkId, content: h.content, tokens: h.tokenCount })),
      budget: { maxPromptTokens, maxHistoryTokens },
      countTokens: (text) => known.get(text) ?? deps.countTokens(text),
      questionTokens,
    });
    const sources = new Map(hits.map((h) => [h.chunkId, { documentId: h.documentId, name: h.documentName }]));
    return {
      ...base,
      sources,
      promptTokens: prompt.tokens,
      request: { messages: prompt.messages, passages: prompt.passages, maxTokens: maxAnswerTokens },
    };
  }

  /** The usage event of this request's model call (retried, else parked in the outbox: usage-events.ts). */
  async function recordUsage(
    p: Prepared,
    call: CallContext,
    ordinal: number,
    completion: Pick<ChatCompletion, 'model' | 'usage'>,
  ): Promise<void> {
    const ctx = { ...call, tenantId: p.principal.tenantId, userId: p.principal.userId, source: 'chat' as const };
    await recordUsageEvent(deps, ctx, ordinal, completion);
  }

  async function persist(p: Prepared, answer: ChatAnswer, answerTokens: number): Promise<void> {
    const now = iso();
    const turn: StoredMessage[] = [
      { messageId: `${answer.messageId}-q`, role: 'user', content: p.question, createdAt: now, tokens: p.questionTokens },
      {
        messageId: answer.messageId,
        role: 'assistant',
        content: answer.answer,
        createdAt: now,
        tokens: answerTokens,
        ...(answer.citations.length ? { citations: answer.citations } : {}),
      },
    ];
    if (!p.conversation) {
      const item: ConversationItem = {
        id: p.conversationId,
        tenantId: p.principal.tenantId,
        kind: 'conversation',
        ownerId: p.principal.userId,
        createdAt: now,
        updatedAt: now,
        messages: turn,
      };
      await deps.documents.create(CONVERSATIONS, item);
      return;
    }
    // Concurrent turns of one conversation: appended one after the other (optimistic-update.ts).
    let current: Stored<ConversationItem> | undefined = p.conversation;
    await updater.run(
      `${CONVERSATIONS}/${p.principal.tenantId}/${p.conversationId}`,
      async () => {
        current ??= await loadConversation(p.principal, p.conversationId);
        const messages = [...current.messages, ...turn].slice(-MAX_STORED_MESSAGES);
        const { _etag, _ts, ...rest } = current;
        try {
          await deps.documents.replace<ConversationItem>(
            CONVERSATIONS,
            { ...rest, messages, updatedAt: now },
            { ifMatch: _etag },
          );
        } catch (err) {
          current = undefined; // read the latest version on the next attempt
          throw err;
        }
      },
      'The conversation',
    );
  }

  async function settle(p: Prepared, call: CallContext, completion: ChatCompletion): Promise<ChatAnswer> {
    const sources = p.sources ?? new Map();
    const citations: Citation[] = [];
    for (const chunkId of extractCitations(completion.text, p.request?.passages ?? [])) {
      const s = sources.get(chunkId);
      if (s) citations.push({ documentId: s.documentId, name: s.name, chunkId });
    }
    const answer: ChatAnswer = {
      conversationId: p.conversationId,
      messageId: `m${deps.newId().replace(/-/g, '')}`,
      answer: completion.text,
      citations,
      usage: { ...completion.usage },
      model: {
        region: completion.model.region,
        deployment: completion.model.deployment,
        ...(completion.model.local ? { local: true } : {}),
      },
      cached: false,
    };
    const value: ChatCacheValue = {
      answer: answer.answer,
      citations: answer.citations,
      usage: answer.usage,
      model: answer.model,
      sources: [...new Set(citations.map((c) => c.documentId))],
    };
    // Issued together so a store that groups commits (the local one) writes them in one
    // transaction. The usage event and the conversation must both land; the cache may not.
    await Promise.all([
      recordUsage(p, call, 1, completion),
      persist(p, answer, completion.usage.completionTokens),
      deps.cache.put(p.cacheInput, value).catch((err: unknown) => {
        deps.logger.warn('could not fill the response cache', { err });
      }),
    ]);
    return answer;
  }

  async function fromCache(p: Prepared, value: ChatCacheValue): Promise<ChatAnswer> {
    const answer: ChatAnswer = {
      conversationId: p.conversationId,
      messageId: `m${deps.newId().replace(/-/g, '')}`,
      answer: value.answer,
      citations: value.citations,
      usage: value.usage,
      model: value.model,
      cached: true,
    };
    await persist(p, answer, value.usage.completionTokens);
    return answer;
  }

  return {
    /** Answers in one piece. @throws AppError (404, 429 rate_limited/budget_exceeded, 503…). */
    async ask(principal: Principal, input: ChatInput, call: CallContext): Promise<ChatAnswer> {
      const p = await prepare(principal, input);
      if (p.cached) return fromCache(p, p.cached);
      const completion = await deps.model.complete(p.request as ChatRequest);
      return settle(p, call, completion);
    },

    /**
     * Answers as deltas, then `done` with the same answer `ask` returns. Errors before the
     * first delta are thrown from the first `next()` (the caller can still answer with a
     * status); after it they are thrown mid-stream (the gateway no longer fails over).
     */
    async *askStream(principal: Principal, input: ChatInput, call: CallContext): AsyncGenerator<ChatStreamItem> {
      const p = await prepare(principal, input);
      if (p.cached) {
        const answer = await fromCache(p, p.cached);
        yield { type: 'delta', text: answer.answer };
        yield { type: 'done', answer };
        return;
      }
      // What the model has produced so far, to account for a stream that never reaches `done`.
      let streamed: { model: ModelInfo; text: string } | undefined;
      let settled = false;
      try {
        for await (const event of deps.model.stream(p.request as ChatRequest)) {
          if (event.type === 'delta') {
            streamed = { model: event.model, text: (streamed?.text ?? '') + event.text };
            if (event.text !== '') yield { type: 'delta', text: event.text };
          } else {
            settled = true;
            yield { type: 'done', answer: await settle(p, call, event.completion) };
            return;
          }
        }
      } finally {
        // The client left (return()) or the model broke off after its first delta: the
        // deployment was still paid for the prompt and what it streamed. Recorded with the
        // assembler's prompt count and the streamed text's tokens (the model's own usage
        // only comes with its last chunk), under the id `done` would have used.
        if (!settled && streamed) {
          await recordUsage(p, call, 1, {
            model: streamed.model,
            usage: usageOf(p.promptTokens ?? 0, deps.countTokens(streamed.text)),
          }).catch((err: unknown) => {
            deps.logger.error('could not record the usage of an unfinished chat stream', { err });
          });
        }
      }
    },

    /** The owner's conversation. @throws AppError `not_found` for anyone else. */
    async conversation(principal: Principal, conversationId: string) {
      const item = await loadConversation(principal, conversationId);
      return {
        conversationId: item.id,
        messages: item.messages.map((m) => ({
          role: m.role,
          content: m.content,
          createdAt: m.createdAt,
          ...(m.citations ? { citations: m.citations } : {}),
        })),
      };
    },
  };
}

export type Chat = ReturnType<typeof createChat>;
