/**
 * ChatModel over the `openai` SDK: the shared code of `OpenAiCompatibleChatModel` (any
 * OpenAI-compatible endpoint: OpenAI, Ollama, vLLM…) and `AzureOpenAiChatModel`
 * (../azure/azure-openai-chat-model.ts). The SDK's own retries are always off
 * (`maxRetries: 0`): the gateway owns the retry and failover policy. SDK errors are
 * translated here, once, into the AppErrors of src/domain/model-errors.ts.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionCreateParamsBase, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import {
  usageOf,
  type ChatCompletion,
  type ChatRequest,
  type ChatStreamEvent,
  type ChatUsage,
  type FinishReason,
  type ModelInfo,
} from '../../domain/chat';
import { AppError } from '../../domain/errors';
import { modelThrottled, modelTransientFailure, parseRetryAfter } from '../../domain/model-errors';
import type { ChatModel } from '../../ports/chat-model';
import { sharedNodeHttpFetch } from './node-http-fetch';

/** Which field carries the answer's token limit: o-series (reasoning) models take only the newer one. */
export type MaxTokensField = 'max_tokens' | 'max_completion_tokens';

export interface OpenAiChatModelIdentity {
  region: string;
  deployment: string;
  /** The model name reported in answers (and, for OpenAI-compatible endpoints, sent as `model`). */
  model: string;
}

/** Translates anything the SDK throws into the gateway's AppErrors. */
export function translateOpenAiError(err: unknown, who: string, now: number = Date.now()): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof APIUserAbortError) return err;
  if (err instanceof APIConnectionTimeoutError) return modelTransientFailure(`${who} timed out`, err);
  if (err instanceof APIConnectionError) return modelTransientFailure(`${who} could not be reached`, err);
  if (err instanceof APIError) {
    const status = err.status;
    if (status === 429) {
      const headers = err.headers;
      return modelThrottled(`${who} is throttled`, headers ? parseRetryAfter((n) => headers.get(n), now) : undefined, err);
    }
    if (status === undefined || status >= 500 || status === 408) {
      // An `error` event inside a stream has no status: the service failed mid-answer.
      return modelTransientFailure(`${who} failed${status ? ` with ${status}` : ''}`, err);
    }
    if (status === 400 || status === 422) {
      const filtered = err.code === 'content_filter' || /content.?filter|content management policy/i.test(err.message);
      return new AppError(
        'validation_failed',
        filtered ? 'The model refused the request (content filter).' : 'The model rejected the request.',
        { cause: err },
      );
    }
    return new AppError('internal', `${who} refused the call with ${status}`, { cause: err });
  }
  return err;
}

function finishReasonOf(value: string | null | undefined): FinishReason {
  switch (value) {
    case 'stop':
    case 'length':
    case 'content_filter':
      return value;
    default:
      return 'other';
  }
}

/** Usage when an endpoint reports none (some compatible servers ignore include_usage). */
function countedUsage(request: ChatRequest, text: string): ChatUsage {
  const prompt = request.messages.reduce((n, m) => n + 4 + countTokens(m.content), 3);
  return usageOf(prompt, countTokens(text));
}

export interface OpenAiChatModelOptions extends OpenAiChatModelIdentity {
  client: OpenAI;
  /** Sent as `model` in the body (Azure: the deployment name; others: the model name). */
  bodyModel: string;
  maxTokensField: MaxTokensField;
  clock?: { now(): number };
}

export class OpenAiChatModel implements ChatModel {
  protected readonly client: OpenAI;
  readonly info: ModelInfo;
  private readonly bodyModel: string;
  private readonly maxTokensField: MaxTokensField;
  private readonly now: () => number;

  constructor(options: OpenAiChatModelOptions) {
    this.client = options.client;
    this.info = { region: options.region, deployment: options.deployment, model: options.model };
    this.bodyModel = options.bodyModel;
    this.maxTokensField = options.maxTokensField;
    const clock = options.clock;
    this.now = clock ? () => clock.now() : Date.now;
  }

  private get who(): string {
    return `model deployment ${this.info.region}/${this.info.deployment}`;
  }

  private body(request: ChatRequest): ChatCompletionCreateParamsBase {
    return {
      model: this.bodyModel,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      ...(request.maxTokens !== undefined ? { [this.maxTokensField]: request.maxTokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.responseFormat === 'json' ? { response_format: { type: 'json_object' as const } } : {}),
    };
  }

  async complete(request: ChatRequest): Promise<ChatCompletion> {
    let response;
    try {
      response = await this.client.chat.completions.create(
        { ...this.body(request), stream: false },
        request.signal ? { signal: request.signal } : undefined,
      );
    } catch (err) {
      throw translateOpenAiError(err, this.who, this.now());
    }
    const choice = response.choices[0];
    const text = choice?.message.content ?? '';
    const usage = response.usage
      ? usageOf(response.usage.prompt_tokens, response.usage.completion_tokens)
      : countedUsage(request, text);
    return { text, usage, model: { ...this.info }, finishReason: finishReasonOf(choice?.finish_reason) };
  }

  async *stream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    let chunks: AsyncIterable<ChatCompletionChunk>;
    try {
      chunks = await this.client.chat.completions.create(
        { ...this.body(request), stream: true, stream_options: { include_usage: true } },
        request.signal ? { signal: request.signal } : undefined,
      );
    } catch (err) {
      throw translateOpenAiError(err, this.who, this.now());
    }
    let text = '';
    let finish: string | null | undefined;
    let usage: ChatUsage | undefined;
    const iterator = chunks[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<ChatCompletionChunk>;
      try {
        next = await iterator.next();
      } catch (err) {
        const translated = translateOpenAiError(err, this.who, this.now());
        if (translated instanceof AppError || request.signal?.aborted) throw translated;
        // The body broke off (connection reset mid-stream): the deployment failed.
        throw modelTransientFailure(`${this.who} broke off its answer`, err);
      }
      if (next.done) break;
      const chunk = next.value;
      if (chunk.usage) usage = usageOf(chunk.usage.prompt_tokens, chunk.usage.completion_tokens);
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.finish_reason) finish = choice.finish_reason;
      const delta = choice.delta?.content;
      if (delta) {
        text += delta;
        yield { type: 'delta', text: delta, model: this.info };
      }
    }
    yield {
      type: 'done',
      completion: {
        text,
        usage: usage ?? countedUsage(request, text),
        model: { ...this.info },
        finishReason: finishReasonOf(finish),
      },
    };
  }
}

export interface OpenAiCompatibleChatModelOptions extends OpenAiChatModelIdentity {
  /** e.g. `http://127.0.0.1:11434/v1` (Ollama) or `https://api.openai.com/v1`. */
  baseURL: string;
  /** Local servers accept any key; a placeholder is sent when absent. */
  apiKey?: string;
  /** Sent as `model` (default: `model`). Ollama wants its own model name, e.g. `llama3.2`. */
  requestModel?: string;
  /** Per-attempt timeout in ms (default 30 s). */
  timeoutMs?: number;
  maxTokensField?: MaxTokensField;
  /** Tests: a fetch to observe or fake the network (default: node:http keep-alive, ./node-http-fetch.ts). */
  fetch?: typeof fetch;
  clock?: { now(): number };
}

/** Any OpenAI-compatible `/chat/completions` endpoint as one deployment. */
export class OpenAiCompatibleChatModel extends OpenAiChatModel {
  constructor(options: OpenAiCompatibleChatModelOptions) {
    super({
      region: options.region,
      deployment: options.deployment,
      model: options.model,
      bodyModel: options.requestModel ?? options.model,
      maxTokensField: options.maxTokensField ?? 'max_tokens',
      ...(options.clock ? { clock: options.clock } : {}),
      client: new OpenAI({
        baseURL: options.baseURL,
        apiKey: options.apiKey ?? 'not-needed',
        // Explicit, so OPENAI_* variables of the environment never change what is called.
        organization: null,
        project: null,
        maxRetries: 0,
        timeout: options.timeoutMs ?? 30_000,
        fetch: options.fetch ?? sharedNodeHttpFetch,
      }),
    });
  }
}
