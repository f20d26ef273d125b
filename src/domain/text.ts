/**
 * Pure text repair used by extraction: undoing the commonest mis-decoding in the wild, UTF-8
 * bytes read as Windows-1252 (or Latin-1) — "â€™" for "’", "â”‚" for "│", "Ã—" for "×".
 */

/** Windows-1252 characters of bytes 0x80–0x9F (undefined bytes map to the C1 control of the same value). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d, 0x8f, 0x90,
  0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
];

const BYTE_OF = new Map<number, number>();
for (let b = 0; b < 256; b++) BYTE_OF.set(b >= 0x80 && b <= 0x9f ? (CP1252_HIGH[b - 0x80] as number) : b, b);
// Some decoders turn the undefined bytes into U+0080–U+009F rather than the Windows-1252 glyph.
for (let b = 0x80; b <= 0x9f; b++) if (!BYTE_OF.has(b)) BYTE_OF.set(b, b);

/** "â€" + lost 0x9D is "”" (the commonest case of all); "â”" + lost 0x90 is "┐". */
const LOST_THIRD_BYTE: Record<number, string> = { 0x80: '\u201d', 0x94: '\u2510' };

/** The byte a character stands for under Windows-1252/Latin-1 mis-decoding, or undefined. */
function byteOf(ch: number): number | undefined {
  return BYTE_OF.get(ch);
}

/**
 * Repairs UTF-8 text that was decoded as Windows-1252 or Latin-1 and re-encoded, sequence by
 * sequence: a lead character (U+00C2–U+00F4) followed by the right number of characters that
 * map to continuation bytes (0x80–0xBF) and together form a valid UTF-8 sequence is replaced by
 * the character it encodes. Everything else is left exactly as it was, so clean text (and
 * genuine Latin-1 like "café") passes through unchanged. Never throws.
 */
export function repairMojibake(text: string): string {
  return repairMojibakeCounted(text).text;
}

/** `repairMojibake`, also saying how many sequences it repaired. */
export function repairMojibakeCounted(text: string): { text: string; repairs: number } {
  if (!/[\u00c2-\u00f4]/.test(text)) return { text, repairs: 0 };
  let repairs = 0;
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 0xc2 && c <= 0xf4) {
      const need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
      const bytes = [c];
      let ok = i + need < n;
      for (let k = 1; ok && k <= need; k++) {
        const b = byteOf(text.charCodeAt(i + k));
        if (b === undefined || b < 0x80 || b > 0xbf) ok = false;
        else bytes.push(b);
      }
      if (ok) {
        const decoded = decodeUtf8(bytes);
        if (decoded !== undefined) {
          out += decoded;
          repairs++;
          i += need + 1;
          continue;
        }
      } else if (need === 2 && bytes.length === 2 && c === 0xe2) {
        // A third byte that Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) is
        // usually dropped on the way; the two survivors still tell the likeliest character.
        const lost = LOST_THIRD_BYTE[bytes[1] as number];
        if (lost) {
          out += lost;
          repairs++;
          i += 2;
          continue;
        }
      }
    }
    out += text[i];
    i++;
  }
  return { text: out, repairs };
}

/** Decodes one complete UTF-8 sequence; undefined when overlong, a surrogate or out of range. */
function decodeUtf8(bytes: number[]): string | undefined {
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0] = bytes;
  let cp: number;
  if (bytes.length === 2) cp = ((b0 & 0x1f) << 6) | (b1 & 0x3f);
  else if (bytes.length === 3) cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
  else cp = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
  const min = bytes.length === 2 ? 0x80 : bytes.length === 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
  return String.fromCodePoint(cp);
}

/** Normalises line endings and drops a BOM and NUL characters (SQLite and tokenizers dislike them). */
export function normalizeText(text: string): string {
  return (
    text
      .replace(/^\uFEFF/, '')
      .replace(/\r\n?/g, '\n')
      // eslint-disable-next-line no-control-regex -- removing NUL is the point
      .replace(/\u0000/g, '')
  );
}
