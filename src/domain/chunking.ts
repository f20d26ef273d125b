/**
 * Chunking: extracted document text (markdown, or plain) → token-bounded chunks for
 * embedding and search. Pure and deterministic: the same text, options and token counter
 * always give the same chunks with the same ids.
 *
 * Choices (and why):
 * - **400 tokens max, 60 overlap** (`DEFAULT_CHUNKING`). 400 tokens keeps a chunk to one idea
 *   (a section, a table, a code listing) so its vector is not a blur of several, while five
 *   retrieved chunks still fit a small prompt budget (~2k tokens). 60 tokens (~15%) of
 *   trailing prose is repeated at the start of the next chunk of the same section, so a
 *   sentence cut at a boundary is still retrievable with its context.
 * - **Headings bound chunks.** A chunk never spans two sections; it carries its heading path
 *   ("Failover > Cosmos DB"), which is indexed for keyword search and prefixed to the text
 *   that gets embedded. Heading lines themselves are not repeated in `content`.
 * - **Tables and fenced code blocks stay whole** when they fit in one chunk. A larger table
 *   is split between rows, each piece repeating the header and separator rows; a larger code
 *   block is split between lines, each piece re-fenced. Neither gets overlap (overlap is
 *   prose only), so no row or line is indexed twice.
 * - **Prose is split into lines, then sentences**, packed greedily; a sentence longer than
 *   the bound is split between words, a word longer than the bound between characters —
 *   so no chunk is ever over `maxTokens` by the counter given.
 * - **Token counts come from the caller's counter** (the adapters pass gpt-tokenizer's
 *   o200k_base, the encoding of the chat models the chunks are prompted to); the domain
 *   imports no tokenizer. Units are counted once each and summed while packing; every
 *   finished chunk is then counted exactly and shrunk if the sum underestimated.
 * - **Chunk ids are `<documentId>:<version>:<ordinal>`** (`chunkId`): stable for a given
 *   document version, distinct across versions, so replacing a document writes new ids and
 *   `deleteOlderVersions` removes the old ones by version without comparing content.
 */

/** Counts tokens of a text with the tokenizer the chunks are budgeted in. */
export type TokenCounter = (text: string) => number;

export interface ChunkingOptions {
  /** Upper bound of every chunk's token count (by the counter given). Default 400. */
  maxTokens?: number;
  /** Tokens of trailing prose repeated at the start of the next chunk of the same section. Default 60. */
  overlapTokens?: number;
  /** `markdown` recognises headings, tables and fences; `plain` treats every line as prose. Default markdown. */
  format?: 'markdown' | 'plain';
}

export const DEFAULT_CHUNKING = { maxTokens: 400, overlapTokens: 60 } as const;

export interface Chunk {
  /** `<documentId>:<version>:<ordinal>`. */
  id: string;
  documentId: string;
  version: number;
  /** 0-based position in the document. */
  ordinal: number;
  /** Headings above the chunk, outermost first, joined with " > "; "" before the first heading. */
  headingPath: string;
  content: string;
  tokenCount: number;
}

export interface ChunkInput {
  documentId: string;
  version: number;
  text: string;
}

/** The stable id of a chunk (see the file comment). */
export function chunkId(documentId: string, version: number, ordinal: number): string {
  return `${documentId}:${version}:${ordinal}`;
}

/** The separator between heading path segments. */
export const HEADING_SEPARATOR = ' > ';

/** The text to embed for a chunk: its heading path gives the vector its context. */
export function embeddingText(chunk: Pick<Chunk, 'headingPath' | 'content'>): string {
  return chunk.headingPath ? `${chunk.headingPath}\n\n${chunk.content}` : chunk.content;
}

type Block =
  | { kind: 'heading'; level: number; text: string }
  | { kind: 'prose'; lines: string[] }
  | { kind: 'table'; lines: string[] }
  | { kind: 'code'; open: string; close: string; lines: string[] };

type Section = { headingPath: string; blocks: Block[] };

interface Unit {
  text: string;
  tokens: number;
  /** Joins this unit to the previous one inside a chunk. */
  sep: string;
  /** Only prose is carried over as overlap. */
  prose: boolean;
}

/*
 * Line patterns. Every one of them runs on text an uploader controls, so each must take time
 * linear in the line: no two adjacent quantifiers may be able to match the same characters
 * and leave a later check to fail (a `# a<128 KiB of spaces>x` line once took 33 s with
 * `[ \t]+(.*?)[ \t]*$`). Where a single regex would need that, a prefix regex plus a plain
 * scan does the rest (see `heading`, `isTableSeparator`).
 */
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const HEADING_OPEN = /^ {0,3}(#{1,6})(?=[ \t]|$)/;
/** What `.` does not match: a line with one of these was never a fence or heading line. */
const LINE_TERMINATOR = /[\r\u2028\u2029]/;
const SEPARATOR_CELL = /^:?-{2,}:?$/;
const SENTENCE_BREAK = /(?<=[.!?])["')\]]*\s+(?=[A-Z0-9("'[*_`])/;

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';

/** The line without its leading and trailing spaces and tabs (only those: other white space is content). */
function trimBlanks(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isBlank(s[start])) start++;
  while (end > start && isBlank(s[end - 1])) end--;
  return s.slice(start, end);
}

/**
 * An ATX heading line: up to 3 spaces, 1–6 `#`, then the end or a space or tab; its text
 * loses the optional closing `#` sequence (one preceded by a space or tab) and `**`/`__`.
 */
function heading(line: string): { level: number; text: string } | undefined {
  const open = HEADING_OPEN.exec(line);
  if (!open || LINE_TERMINATOR.test(line)) return undefined;
  let text = trimBlanks(line.slice(open[0].length));
  let hashes = text.length;
  while (hashes > 0 && text[hashes - 1] === '#') hashes--;
  let blanks = hashes;
  while (blanks > 0 && isBlank(text[blanks - 1])) blanks--;
  if (hashes < text.length && blanks < hashes) text = text.slice(0, blanks);
  return { level: (open[1] as string).length, text: text.replace(/\*\*|__/g, '').trim() };
}

/** A table's delimiter row: cells of `---` (2 or more), each optionally `:`-aligned, between optional outer pipes. */
function isTableSeparator(line: string): boolean {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|')) s = s.slice(0, -1);
  return s.split('|').every((cell) => SEPARATOR_CELL.test(cell.trim()));
}

function parseBlocks(text: string, format: 'markdown' | 'plain'): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let prose: string[] = [];
  const endProse = (): void => {
    if (prose.length) blocks.push({ kind: 'prose', lines: prose });
    prose = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') {
      endProse();
      continue;
    }
    if (format === 'markdown') {
      const fence = FENCE_OPEN.exec(line);
      if (fence && !LINE_TERMINATOR.test(line)) {
        endProse();
        const marker = fence[1] as string;
        const closing = new RegExp(`^ {0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
        const body: string[] = [];
        let close = marker;
        let j = i + 1;
        for (; j < lines.length; j++) {
          const l = lines[j] as string;
          if (closing.test(l)) {
            close = l;
            break;
          }
          body.push(l);
        }
        blocks.push({ kind: 'code', open: line, close, lines: body });
        i = j;
        continue;
      }
      const h = heading(line);
      if (h) {
        endProse();
        blocks.push({ kind: 'heading', ...h });
        continue;
      }
      if (line.trimStart().startsWith('|')) {
        endProse();
        const rows = [line];
        while (i + 1 < lines.length && (lines[i + 1] as string).trimStart().startsWith('|')) rows.push(lines[++i] as string);
        blocks.push({ kind: 'table', lines: rows });
        continue;
      }
    }
    prose.push(line);
  }
  endProse();
  return blocks;
}

function sections(blocks: Block[]): Section[] {
  const out: Section[] = [];
  const stack: { level: number; text: string }[] = [];
  let current: Section = { headingPath: '', blocks: [] };
  for (const b of blocks) {
    if (b.kind === 'heading') {
      if (current.blocks.length) out.push(current);
      while (stack.length && (stack[stack.length - 1] as { level: number }).level >= b.level) stack.pop();
      if (b.text) stack.push({ level: b.level, text: b.text });
      current = { headingPath: stack.map((s) => s.text).join(HEADING_SEPARATOR), blocks: [] };
    } else {
      current.blocks.push(b);
    }
  }
  if (current.blocks.length) out.push(current);
  return out;
}

class Chunker {
  constructor(
    private readonly count: TokenCounter,
    private readonly max: number,
    private readonly overlap: number,
  ) {}

  /** Splits text that may exceed the bound into pieces that do not, between words, then characters. */
  splitLong(text: string, sep: string, prose: boolean): Unit[] {
    const tokens = this.count(text);
    if (tokens <= this.max) return [{ text, tokens, sep, prose }];
    const words = text.split(/(?<=\s)(?=\S)/);
    const units: Unit[] = [];
    let cur = '';
    let curTokens = 0;
    const push = (): void => {
      if (cur.trim())
        units.push({ text: cur.trimEnd(), tokens: this.count(cur.trimEnd()), sep: units.length ? ' ' : sep, prose });
      cur = '';
      curTokens = 0;
    };
    for (const w of words) {
      const wt = this.count(w);
      if (wt > this.max) {
        push();
        for (const piece of this.splitChars(w.trimEnd())) units.push({ ...piece, sep: units.length ? '' : sep, prose });
        continue;
      }
      if (curTokens + wt > this.max) push();
      cur += w;
      curTokens += wt;
    }
    push();
    // The sum of word counts can underestimate a piece; re-split any that is still over.
    return units.flatMap((u) =>
      u.tokens <= this.max ? [u] : this.splitChars(u.text).map((p, k) => ({ ...p, sep: k ? '' : u.sep, prose })),
    );
  }

  /** Splits a run with no usable spaces by characters (code points), halving until each piece fits. */
  splitChars(text: string): { text: string; tokens: number }[] {
    const chars = Array.from(text);
    const out: { text: string; tokens: number }[] = [];
    let i = 0;
    while (i < chars.length) {
      let len = Math.min(chars.length - i, this.max * 4);
      let piece = chars.slice(i, i + len).join('');
      let tokens = this.count(piece);
      while (tokens > this.max && len > 1) {
        len = Math.max(1, Math.floor((len * this.max) / tokens) - 1);
        piece = chars.slice(i, i + len).join('');
        tokens = this.count(piece);
      }
      out.push({ text: piece, tokens });
      i += len;
    }
    return out;
  }

  unitsOf(block: Exclude<Block, { kind: 'heading' }>): Unit[] {
    switch (block.kind) {
      case 'prose': {
        const units: Unit[] = [];
        block.lines.forEach((line, li) => {
          const sentences = line.trimEnd().split(SENTENCE_BREAK);
          sentences.forEach((s, si) => {
            const sep = si > 0 ? ' ' : li > 0 ? '\n' : '\n\n';
            units.push(...this.splitLong(si > 0 ? s.trim() : s, sep, true));
          });
        });
        return units;
      }
      case 'table': {
        const whole = block.lines.join('\n');
        const tokens = this.count(whole);
        if (tokens <= this.max) return [{ text: whole, tokens, sep: '\n\n', prose: false }];
        const hasSeparator = block.lines.length > 1 && isTableSeparator(block.lines[1] as string);
        const head = hasSeparator ? block.lines.slice(0, 2) : [];
        const rows = hasSeparator ? block.lines.slice(2) : block.lines;
        return this.pack(head, rows, [], '\n');
      }
      case 'code': {
        const whole = [block.open, ...block.lines, block.close].join('\n');
        const tokens = this.count(whole);
        if (tokens <= this.max) return [{ text: whole, tokens, sep: '\n\n', prose: false }];
        return this.pack([block.open], block.lines, [block.close], '\n');
      }
    }
  }

  /** Packs lines into pieces of at most `max` tokens, each wrapped in `head` and `tail` lines. */
  pack(head: string[], lines: string[], tail: string[], joiner: string): Unit[] {
    const frame = this.count([...head, ...tail].join(joiner)) + (head.length + tail.length > 0 ? 2 : 0);
    const units: Unit[] = [];
    let cur: string[] = [];
    let curTokens = frame;
    const flush = (): void => {
      if (!cur.length) return;
      const text = [...head, ...cur, ...tail].join(joiner);
      units.push({ text, tokens: this.count(text), sep: '\n\n', prose: false });
      cur = [];
      curTokens = frame;
    };
    for (const line of lines) {
      const lt = this.count(line) + 1;
      if (frame + lt > this.max) {
        // One line too long even alone in its frame: split it as words, unframed.
        flush();
        units.push(...this.splitLong(line, '\n\n', false));
        continue;
      }
      if (curTokens + lt > this.max) flush();
      cur.push(line);
      curTokens += lt;
    }
    flush();
    // Re-check exactly: summed line counts may underestimate; split a piece between lines again if so.
    return units.flatMap((u) => (u.tokens <= this.max ? [u] : this.splitLong(u.text, u.sep, false)));
  }

  /** Trailing prose of a chunk, at most `overlap` tokens, to start the next chunk with. */
  overlapOf(units: Unit[]): Unit[] {
    if (this.overlap <= 0) return [];
    const out: Unit[] = [];
    let total = 0;
    for (let i = units.length - 1; i >= 0; i--) {
      const u = units[i] as Unit;
      if (!u.prose) break;
      if (total + u.tokens > this.overlap) {
        if (out.length === 0) {
          // The last sentence alone is longer than the overlap: take its last words.
          const words = u.text.split(/(?<=\s)(?=\S)/);
          let tail = '';
          for (let w = words.length - 1; w >= 0; w--) {
            const next = (words[w] as string) + tail;
            if (this.count(next) > this.overlap) break;
            tail = next;
          }
          if (tail.trim()) out.unshift({ text: tail.trim(), tokens: this.count(tail.trim()), sep: '', prose: true });
        }
        break;
      }
      out.unshift(u);
      total += u.tokens;
    }
    return out;
  }

  chunkSection(section: Section): { content: string; tokens: number }[] {
    const units = section.blocks.flatMap((b) => this.unitsOf(b as Exclude<Block, { kind: 'heading' }>));
    const out: { content: string; tokens: number }[] = [];
    let cur: Unit[] = [];
    let curTokens = 0;
    let fresh = 0; // units of `cur` that are not overlap
    const join = (us: Unit[]): string =>
      us
        .map((u, k) => (k === 0 ? u.text.trimStart() : u.sep + u.text))
        .join('')
        .trimEnd();
    const cost = (u: Unit, first: boolean): number => u.tokens + (first ? 0 : u.sep === ' ' || u.sep === '' ? 0 : 1);
    let i = 0;
    while (i < units.length) {
      const u = units[i] as Unit;
      if (!u.text.trim()) {
        i++;
        continue;
      }
      const c = cost(u, cur.length === 0);
      if (fresh > 0 && curTokens + c > this.max) {
        // Finish the chunk; count it exactly and give back units if the sum underestimated.
        let text = join(cur);
        let tokens = this.count(text);
        while (tokens > this.max && fresh > 1) {
          cur.pop();
          fresh--;
          i--;
          text = join(cur);
          tokens = this.count(text);
        }
        if (tokens > this.max && cur.length > fresh) {
          // The overlap tipped it over: drop the overlap rather than exceed the bound.
          cur = cur.slice(cur.length - fresh);
          text = join(cur);
          tokens = this.count(text);
        }
        out.push({ content: text, tokens });
        const carry = this.overlapOf(cur);
        const carryTokens = carry.reduce((s, x, k) => s + cost(x, k === 0), 0);
        const next = units[i] as Unit;
        cur = carryTokens + cost(next, false) <= this.max ? carry : [];
        curTokens = cur === carry ? carryTokens : 0;
        fresh = 0;
        continue;
      }
      cur.push(u);
      curTokens += c;
      fresh++;
      i++;
    }
    if (fresh > 0) {
      let text = join(cur);
      let tokens = this.count(text);
      // Rare: the exact count of the last chunk is over; split it in halves until it fits.
      if (tokens > this.max) {
        const rest = cur.slice();
        while (rest.length) {
          let take = rest.length;
          let slice = rest.slice(0, take);
          text = join(slice);
          tokens = this.count(text);
          while (tokens > this.max && take > 1) {
            take = Math.ceil(take / 2);
            slice = rest.slice(0, take);
            text = join(slice);
            tokens = this.count(text);
          }
          out.push({ content: text, tokens });
          rest.splice(0, take);
        }
      } else {
        out.push({ content: text, tokens });
      }
    }
    return out.filter((c) => c.content.trim() !== '');
  }
}

/**
 * Splits a document into chunks (see the file comment for the rules).
 * @param countTokens the token counter the bound is measured in.
 * @throws RangeError when `maxTokens` < 16 or `overlapTokens` is negative or ≥ `maxTokens / 2`.
 */
export function chunkDocument(input: ChunkInput, countTokens: TokenCounter, options: ChunkingOptions = {}): Chunk[] {
  const max = options.maxTokens ?? DEFAULT_CHUNKING.maxTokens;
  const overlap = options.overlapTokens ?? DEFAULT_CHUNKING.overlapTokens;
  if (!Number.isInteger(max) || max < 16) throw new RangeError('maxTokens must be an integer ≥ 16');
  if (!Number.isInteger(overlap) || overlap < 0 || overlap * 2 > max)
    throw new RangeError('overlapTokens must be in [0, maxTokens / 2]');
  const chunker = new Chunker(countTokens, max, overlap);
  const text = input.text.replace(/\r\n?/g, '\n');
  const chunks: Chunk[] = [];
  for (const section of sections(parseBlocks(text, options.format ?? 'markdown'))) {
    for (const c of chunker.chunkSection(section)) {
      const ordinal = chunks.length;
      chunks.push({
        id: chunkId(input.documentId, input.version, ordinal),
        documentId: input.documentId,
        version: input.version,
        ordinal,
        headingPath: section.headingPath,
        content: c.content,
        tokenCount: c.tokens,
      });
    }
  }
  return chunks;
}
