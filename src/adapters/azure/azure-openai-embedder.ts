/**
 * `Embedder` over an Azure OpenAI embeddings deployment (`openai`'s `AzureOpenAI`):
 * `POST {endpoint}/openai/deployments/{deployment}/embeddings?api-version=…`.
 * The SDK's own retries are off (`maxRetries: 0`): throttling and outages surface as
 * `AppError` with the server's Retry-After, and the caller's policy (the indexer's message
 * retry, the gateway's failover inside the boundary) decides. Vectors are requested as
 * floats explicitly — the SDK otherwise asks for base64 and decodes it itself.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, AzureOpenAI } from 'openai';
import { AppError } from '../../domain/errors';
import type { Embedder } from '../../ports/embedder';
import { sharedNodeHttpFetch } from '../openai/node-http-fetch';

export const DEFAULT_EMBEDDINGS_API_VERSION = '2024-10-21';

export interface AzureOpenAiEmbedderOptions {
  /** The account endpoint, e.g. `https://meridian-oai-eastus.openai.azure.com`. */
  endpoint: string;
  /** The deployment name (config/deployments.json `deployment`, purpose `embedding`). */
  deployment: string;
  /** The model behind it (`text-embedding-3-small`); reported as `model`. */
  model: string;
  /** Vector length the deployment returns (1536 for text-embedding-3-small); checked on every answer. */
  dimensions: number;
  /** Entra token provider (managed identity) in Azure; or an API key (tests, local endpoints). */
  auth: { azureADTokenProvider: () => Promise<string> } | { apiKey: string };
  apiVersion?: string;
  /** Inputs per request (the service takes up to 2048). Default 256. */
  batchSize?: number;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
  /** Tests and benchmarks: the transport (default: node:http keep-alive, ../openai/node-http-fetch.ts). */
  fetch?: typeof fetch;
}

export class AzureOpenAiEmbedder implements Embedder {
  readonly dimensions: number;
  readonly model: string;
  private readonly client: AzureOpenAI;
  private readonly batchSize: number;

  constructor(private readonly options: AzureOpenAiEmbedderOptions) {
    this.dimensions = options.dimensions;
    this.model = `${options.model} (${options.deployment})`;
    this.batchSize = Math.min(2048, Math.max(1, options.batchSize ?? 256));
    this.client = new AzureOpenAI({
      endpoint: options.endpoint,
      deployment: options.deployment,
      apiVersion: options.apiVersion ?? DEFAULT_EMBEDDINGS_API_VERSION,
      maxRetries: 0,
      timeout: options.timeoutMs ?? 30_000,
      fetch: options.fetch ?? sharedNodeHttpFetch,
      // A batch of 256 × 1536 floats is ~8 MB of JSON: worth compressing over the network
      // (node-http-fetch decodes it; it adds no Accept-Encoding of its own).
      defaultHeaders: { 'accept-encoding': 'gzip' },
      ...('apiKey' in options.auth
        ? { apiKey: options.auth.apiKey }
        : { azureADTokenProvider: options.auth.azureADTokenProvider }),
    });
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    return embedInBatches(texts, {
      batchSize: this.batchSize,
      dimensions: this.dimensions,
      source: `deployment ${this.options.deployment}`,
      request: async (input) =>
        (await this.client.embeddings.create({ model: this.options.deployment, input, encoding_format: 'float' })).data,
    });
  }

  async check(): Promise<string> {
    await this.embed(['health check']);
    return this.model;
  }
}

/**
 * The part every OpenAI-style embedder shares: batches of `batchSize`, blank texts sent as one
 * space (the API refuses empty strings), SDK errors translated once, and every answer checked
 * — one vector per input, each of `dimensions` — so a misbehaving endpoint fails loudly instead
 * of corrupting an index. Only `request` (one API call for one batch) differs per endpoint.
 */
export async function embedInBatches(
  texts: readonly string[],
  options: {
    batchSize: number;
    dimensions: number;
    /** What answered, for messages: `deployment chat` or `model text-embedding-3-small`. */
    source: string;
    request: (input: string[]) => Promise<{ index: number; embedding: number[] }[]>;
  },
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < texts.length; i += options.batchSize) {
    const input = texts.slice(i, i + options.batchSize).map((t) => (t === '' ? ' ' : t));
    let data: { index: number; embedding: number[] }[];
    try {
      data = await options.request(input);
    } catch (err) {
      throw translateEmbeddingError(err, options.source);
    }
    if (data.length !== input.length) {
      throw new AppError(
        'unavailable',
        `embeddings ${options.source} returned ${data.length} vectors for ${input.length} inputs`,
      );
    }
    for (const d of [...data].sort((a, b) => a.index - b.index)) {
      if (!Array.isArray(d.embedding) || d.embedding.length !== options.dimensions) {
        const got = Array.isArray(d.embedding) ? d.embedding.length : typeof d.embedding;
        throw new AppError(
          'unavailable',
          `embeddings ${options.source} returned a vector of ${got} dimensions, expected ${options.dimensions}`,
        );
      }
      out.push(Float32Array.from(d.embedding));
    }
  }
  return out;
}

/** Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date); undefined when absent. */
export function retryAfterSeconds(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  const ms = Number(headers?.get('retry-after-ms'));
  if (headers?.get('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.max(1, Math.ceil(ms / 1000));
  const raw = headers?.get('retry-after');
  if (!raw) return undefined;
  const s = Number(raw);
  if (Number.isFinite(s) && s >= 0) return Math.max(1, Math.ceil(s));
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - now) / 1000));
}

export function translateEmbeddingError(err: unknown, source: string): AppError {
  if (err instanceof APIConnectionTimeoutError)
    return new AppError('unavailable', `embeddings ${source} timed out`, { cause: err });
  if (err instanceof APIConnectionError)
    return new AppError('unavailable', `embeddings ${source} is unreachable`, { cause: err });
  if (err instanceof APIError) {
    const status = err.status ?? 0;
    const retry = retryAfterSeconds(err.headers);
    const opts = { cause: err, ...(retry !== undefined ? { retryAfterSeconds: retry } : {}) };
    if (status === 429)
      return new AppError('rate_limited', `embeddings ${source} is throttled`, {
        ...opts,
        retryAfterSeconds: retry ?? 1,
      });
    if (status === 400 || status === 413 || status === 422)
      return new AppError('validation_failed', `embeddings ${source} refused the input (${status})`, opts);
    return new AppError('unavailable', `embeddings ${source} answered ${status}`, opts);
  }
  return new AppError('unavailable', `embeddings ${source} failed`, { cause: err });
}
