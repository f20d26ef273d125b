/**
 * The response cache's exact-match key, pure. Two questions share an answer only when they
 * are the same after normalisation, asked in the same conversation context, of the same
 * tenant, against the same versions of the tenant's and the shared index — any upload or
 * deletion bumps an `indexVersion` and so retires every cached answer built on the old one.
 */
import type { HashFn } from './audit-chain';

/**
 * Unicode NFKC, lower case, whitespace collapsed, trimmed, trailing `?!.` and spaces dropped:
 * "  What is the LEAVE policy ? " and "what is the leave policy" are one question.
 */
export function normaliseQuestion(question: string): string {
  return question
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\s+/gu, ' ')
    .trim()
    .replace(/[\s?!.。？！]+$/u, '');
}

export interface ResponseCacheKeyInput {
  tenantId: string;
  question: string;
  /**
   * The conversation context the answer depends on (the history turns put in the prompt),
   * oldest first; empty for a first question. Compared exactly (after trimming).
   */
  context: ReadonlyArray<{ role: string; content: string }>;
  /** The tenant's index version (from its catalog). */
  indexVersion: number | string;
  /** The shared documents' index version. */
  sharedIndexVersion: number | string;
  /** Anything else the answer depends on (e.g. the prompt template version), if any. */
  variant?: string;
}

/** The key: `hash` (SHA-256, hex: src/app/hashing.ts) of a canonical JSON of the inputs. */
export function responseCacheKey(input: ResponseCacheKeyInput, hash: HashFn): string {
  const canonical = JSON.stringify([
    'meridian-response-cache/1',
    input.tenantId,
    String(input.indexVersion),
    String(input.sharedIndexVersion),
    input.variant ?? '',
    input.context.map((t) => [t.role, t.content.trim()]),
    normaliseQuestion(input.question),
  ]);
  return hash(canonical);
}
