/**
 * `Embedder` over an OpenAI-compatible endpoint (`POST {baseURL}/embeddings`): OpenAI, Ollama,
 * or the benchmark's fake. Local mode only (MERIDIAN_OPENAI_EMBEDDING_MODEL). It asks for
 * `dimensions` explicitly (text-embedding-3 models shorten their vectors on request) so the
 * local indexes keep their 512-dimension vectors, and checks every vector's length: an
 * endpoint that ignores `dimensions` fails loudly instead of corrupting an index.
 * SDK retries are off, as everywhere: the caller's policy decides.
 */
import OpenAI from 'openai';
import type { Embedder } from '../../ports/embedder';
import { embedInBatches } from '../azure/azure-openai-embedder';
import { sharedNodeHttpFetch } from './node-http-fetch';

export interface OpenAiCompatibleEmbedderOptions {
  baseURL: string;
  apiKey?: string;
  model: string;
  dimensions: number;
  batchSize?: number;
  timeoutMs?: number;
  /** Tests and benchmarks: the transport (default: node:http keep-alive, ./node-http-fetch.ts). */
  fetch?: typeof fetch;
}

export class OpenAiCompatibleEmbedder implements Embedder {
  readonly dimensions: number;
  readonly model: string;
  private readonly client: OpenAI;
  private readonly batchSize: number;

  constructor(private readonly options: OpenAiCompatibleEmbedderOptions) {
    this.dimensions = options.dimensions;
    this.model = `${options.model}@${options.dimensions} (openai-compatible)`;
    this.batchSize = Math.min(2048, Math.max(1, options.batchSize ?? 256));
    this.client = new OpenAI({
      baseURL: options.baseURL,
      apiKey: options.apiKey ?? 'not-needed',
      maxRetries: 0,
      timeout: options.timeoutMs ?? 30_000,
      fetch: options.fetch ?? sharedNodeHttpFetch,
    });
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    return embedInBatches(texts, {
      batchSize: this.batchSize,
      dimensions: this.dimensions,
      source: `model ${this.options.model}`,
      request: async (input) =>
        (
          await this.client.embeddings.create({
            model: this.options.model,
            input,
            dimensions: this.dimensions,
            encoding_format: 'float',
          })
        ).data,
    });
  }

  async check(): Promise<string> {
    await this.embed(['health check']);
    return this.model;
  }
}
