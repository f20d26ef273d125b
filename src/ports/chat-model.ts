/**
 * A chat model: one deployment (AzureOpenAiChatModel, OpenAiCompatibleChatModel,
 * LocalChatModel) or the gateway over several (src/app/model-gateway.ts), which implements
 * the same port. Requests and answers are domain types (src/domain/chat.ts).
 *
 * Errors are always `AppError` (src/domain/errors.ts, src/domain/model-errors.ts):
 * - `rate_limited` (429): throttled; `retryAfterSeconds` says when to come back (a single
 *   deployment also carries `extensions.retryAfterMs` when the response named a time)
 * - `model_unavailable` (503): 5xx, timeout or connection failure (a single deployment marks
 *   it `extensions.transient`); from the gateway: no deployment of the boundary can answer
 * - `validation_failed` (400): the model refused the request (content filter, bad request)
 * - `internal`: misconfiguration (401/403/404 from the service) or anything unexpected
 */
import type { ChatCompletion, ChatRequest, ChatStreamEvent } from '../domain/chat';

export type {
  ChatCompletion,
  ChatMessage,
  ChatRequest,
  ChatRole,
  ChatStreamEvent,
  ChatUsage,
  CitablePassage,
  FinishReason,
  ModelInfo,
} from '../domain/chat';

export interface ChatModel {
  /**
   * Answers in one piece.
   * @returns the whole completion with usage and the deployment that answered.
   * @throws AppError as listed above; an aborted `signal` rejects with the abort reason.
   */
  complete(request: ChatRequest): Promise<ChatCompletion>;

  /**
   * Answers as it is produced: `delta` events whose texts concatenate to the answer, then
   * one `done` with the whole completion (usage included). Nothing follows `done`.
   * @throws AppError as listed above, before the first event or, when the model fails
   *   mid-answer, after some deltas (the caller then reports an error, not a partial answer).
   */
  stream(request: ChatRequest): AsyncIterable<ChatStreamEvent>;
}
