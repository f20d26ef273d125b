/**
 * Real BPE token counts (gpt-tokenizer, o200k_base: the encoding of the gpt-4o / o-series
 * chat models the retrieved chunks are prompted to). Used for chunk bounds and token counts
 * everywhere, so one encoding budgets everything.
 */
import { countTokens as o200kCount } from 'gpt-tokenizer/encoding/o200k_base';
import type { TokenCounter } from '../../domain/chunking';

export const TOKEN_ENCODING = 'o200k_base';

/** Tokens of `text` in o200k_base; special-token strings are counted as plain text, never rejected. */
export const countTokens: TokenCounter = (text) => o200kCount(text, { disallowedSpecial: new Set() });
