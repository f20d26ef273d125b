/**
 * Real BPE token counts (gpt-tokenizer, o200k_base: the encoding of the gpt-4o / o-series
 * chat models the retrieved chunks are prompted to). Used for chunk bounds and token counts
 * everywhere, so one encoding budgets everything.
 */
import { countTokens as o200kCount } from 'gpt-tokenizer/encoding/o200k_base';
import type { TokenCounter } from '../../domain/chunking';

export const TOKEN_ENCODING = 'o200k_base';

/**
 * The longest run of white space, or of anything else, that reaches the BPE in one piece.
 * gpt-tokenizer's merge loop is quadratic in the length of a pre-token piece (one line of 128
 * KiB of spaces took 23 s to count), and uploaded text can hold such runs, so a longer run is
 * counted in slices of this length. Linear overall; exact for text without such runs (prose,
 * code, tables); otherwise about one token per slice above the exact count, never below it by
 * more than that, which a chunk budget does not notice.
 */
const MAX_RUN = 256;

const isSpace = (c: number): boolean =>
  c <= 0x20 ||
  c === 0x85 ||
  c === 0xa0 ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x202f ||
  c === 0x205f ||
  c === 0x3000 ||
  c === 0xfeff;

const o200k = (text: string): number => o200kCount(text, { disallowedSpecial: new Set() });

/** Tokens of `text` in o200k_base; special-token strings are counted as plain text, never rejected. */
export const countTokens: TokenCounter = (text) => {
  let total = 0;
  let from = 0;
  let runStart = 0;
  let runSpace = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = isSpace(c);
    if (i === 0 || space !== runSpace) {
      runStart = i;
      runSpace = space;
    } else if (i - runStart >= MAX_RUN && !(c >= 0xdc00 && c <= 0xdfff)) {
      // Cut here (never inside a surrogate pair): the slice before it is counted on its own.
      total += o200k(text.slice(from, i));
      from = i;
      runStart = i;
    }
  }
  return total + o200k(text.slice(from));
};
