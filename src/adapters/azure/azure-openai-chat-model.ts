/**
 * One Azure OpenAI chat deployment through `openai`'s `AzureOpenAI` client:
 * `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…` with the
 * `api-key` header, or an Entra token (managed identity) from a TokenCredential through
 * `getBearerTokenProvider`. `maxRetries: 0`: the gateway owns retries and failover.
 */
import { getBearerTokenProvider, type TokenCredential } from '@azure/identity';
import { AzureOpenAI } from 'openai';
import { sharedNodeHttpFetch } from '../openai/node-http-fetch';
import { OpenAiChatModel, type MaxTokensField } from '../openai/openai-chat-model';

/** GA api-version with `stream_options.include_usage` and `max_completion_tokens`. */
export const AZURE_OPENAI_API_VERSION = '2024-10-21';
export const AZURE_OPENAI_SCOPE = 'https://cognitiveservices.azure.com/.default';

export interface AzureOpenAiChatModelOptions {
  region: string;
  /** `https://<account>.openai.azure.com` */
  endpoint: string;
  deployment: string;
  /** The model behind the deployment, reported in answers. */
  model: string;
  /** Exactly one of them. */
  apiKey?: string;
  credential?: TokenCredential;
  apiVersion?: string;
  /** Per-attempt timeout in ms (default 30 s). */
  timeoutMs?: number;
  /** Default `max_completion_tokens` (accepted by every current model, required by o-series). */
  maxTokensField?: MaxTokensField;
  /** Tests: a fetch to observe or fake the network (default: node:http keep-alive, ../openai/node-http-fetch.ts). */
  fetch?: typeof fetch;
  clock?: { now(): number };
}

export class AzureOpenAiChatModel extends OpenAiChatModel {
  constructor(options: AzureOpenAiChatModelOptions) {
    if ((options.apiKey === undefined) === (options.credential === undefined)) {
      throw new Error('AzureOpenAiChatModel: pass exactly one of apiKey and credential');
    }
    const endpoint = options.endpoint.replace(/\/+$/, '');
    const client = new AzureOpenAI({
      // baseURL rather than endpoint, so OPENAI_BASE_URL in the environment cannot interfere.
      baseURL: `${endpoint}/openai`,
      apiVersion: options.apiVersion ?? AZURE_OPENAI_API_VERSION,
      deployment: options.deployment,
      ...(options.apiKey !== undefined
        ? { apiKey: options.apiKey }
        : { azureADTokenProvider: getBearerTokenProvider(options.credential as TokenCredential, AZURE_OPENAI_SCOPE) }),
      maxRetries: 0,
      timeout: options.timeoutMs ?? 30_000,
      fetch: options.fetch ?? sharedNodeHttpFetch,
    });
    super({
      region: options.region,
      deployment: options.deployment,
      model: options.model,
      bodyModel: options.deployment,
      maxTokensField: options.maxTokensField ?? 'max_completion_tokens',
      client,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }
}
