/**
 * Writes one usage event per model call (API.md "Usage event"); the ledger merges them
 * exactly once by id, so a retried write of the same event is harmless (its create conflicts).
 */
import type { ChatCompletion } from '../domain/chat';
import { isAppError } from '../domain/errors';
import type { Clock } from '../ports/clock';
import type { DocumentStore } from '../ports/document-store';
import { USAGE_CONTAINER } from './usage-ledger';

export interface UsageContext {
  tenantId: string;
  userId: string;
  requestId: string;
  /** Server-generated invocation id (never the client's request id). */
  invocationId: string;
  source: 'chat' | 'session' | 'evaluation';
}

export async function recordUsage(
  deps: { documents: DocumentStore; clock: Clock },
  ctx: UsageContext,
  ordinal: number,
  completion: Pick<ChatCompletion, 'usage' | 'model'>,
): Promise<void> {
  try {
    await deps.documents.create(USAGE_CONTAINER, {
      id: `${ctx.invocationId}:${ordinal}`,
      tenantId: ctx.tenantId,
      userId: ctx.userId,
      requestId: ctx.requestId,
      region: completion.model.region,
      deployment: completion.model.deployment,
      source: ctx.source,
      promptTokens: completion.usage.promptTokens,
      completionTokens: completion.usage.completionTokens,
      at: new Date(deps.clock.now()).toISOString(),
    });
  } catch (err) {
    if (!isAppError(err, 'conflict')) throw err;
  }
}
