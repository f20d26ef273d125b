/**
 * Chat in domain terms: what a model is asked and what it answers. The `ChatModel` port
 * (src/ports/chat-model.ts) speaks these types; prompt assembly (./prompt.ts) produces them.
 */

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/**
 * A retrieved passage as the prompt shows it: `[citation]` is the number the model cites.
 * Real models read passages from the messages; the local answerer reads them from here.
 */
export interface CitablePassage {
  /** The number shown to the model and cited as `[n]` (1-based, stable for one prompt). */
  citation: number;
  /** The passage's id (a chunk id). */
  id: string;
  content: string;
}

export interface ChatRequest {
  messages: readonly ChatMessage[];
  /** Upper bound on completion tokens. */
  maxTokens?: number;
  /** 0..2; adapters omit it when unset. */
  temperature?: number;
  /** `json` asks for a JSON object (OpenAI `response_format: {type: "json_object"}`). */
  responseFormat?: 'text' | 'json';
  /**
   * The passages already rendered into `messages`, for answerers that do not read prose
   * (LocalChatModel). Adapters of real models ignore it; it is never sent anywhere.
   */
  passages?: readonly CitablePassage[];
  /** Aborts the call (client went away). */
  signal?: AbortSignal;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** Which deployment answered. `local: true` only for the local extractive answerer. */
export interface ModelInfo {
  region: string;
  deployment: string;
  model: string;
  local?: true;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'other';

export interface ChatCompletion {
  text: string;
  usage: ChatUsage;
  model: ModelInfo;
  finishReason: FinishReason;
}

/**
 * A streamed answer: any number of `delta`s, then exactly one `done` with the whole completion.
 * Each delta names the deployment producing it, so a stream that never reaches `done` (the
 * client left, the model broke off) can still be accounted to it.
 */
export type ChatStreamEvent = { type: 'delta'; text: string; model: ModelInfo } | { type: 'done'; completion: ChatCompletion };

export function usageOf(promptTokens: number, completionTokens: number): ChatUsage {
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
}
