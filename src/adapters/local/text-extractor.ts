/**
 * `TextExtractor` for the five supported media types, in-process (the same in Azure and
 * locally: it needs no service). PDF text comes from unpdf (pdf.js); HTML, JSON, markdown and
 * plain text are handled here without dependencies.
 */
import { extractText, getDocumentProxy, getMeta } from 'unpdf';
import { AppError } from '../../domain/errors';
import { normalizeText, repairMojibake, repairMojibakeCounted } from '../../domain/text';
import {
  SUPPORTED_MEDIA_TYPES,
  type ExtractedText,
  type SupportedMediaType,
  type TextExtractor,
} from '../../ports/text-extractor';

const ALIASES: Record<string, SupportedMediaType> = {
  'text/x-markdown': 'text/markdown',
  'application/xhtml+xml': 'text/html',
  'text/json': 'application/json',
  'application/x-pdf': 'application/pdf',
};

export class LocalTextExtractor implements TextExtractor {
  async extract(bytes: Uint8Array, contentType: string): Promise<ExtractedText> {
    const [rawType = '', ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
    const type = ALIASES[rawType] ?? rawType;
    if (!(SUPPORTED_MEDIA_TYPES as readonly string[]).includes(type)) {
      throw new AppError(
        'unsupported_media_type',
        `content type '${rawType || '(none)'}' is not supported; use one of ${SUPPORTED_MEDIA_TYPES.join(', ')}`,
      );
    }
    const charset = params
      .find((p) => p.startsWith('charset='))
      ?.slice('charset='.length)
      .replace(/"/g, '');
    switch (type as SupportedMediaType) {
      case 'application/pdf':
        return finish(await pdfText(bytes));
      case 'application/json':
        return finish({ text: jsonText(decodeText(bytes, charset)), format: 'plain' });
      case 'text/html': {
        const html = htmlText(decodeText(bytes, charset));
        return finish({ text: html.text, format: 'markdown', ...(html.title ? { title: html.title } : {}) });
      }
      case 'text/markdown':
        return finish({ text: decodeText(bytes, charset), format: 'markdown' });
      case 'text/plain':
        return finish({ text: decodeText(bytes, charset), format: 'plain' });
    }
  }
}

function finish(raw: { text: string; format: 'markdown' | 'plain'; title?: string }): ExtractedText {
  const normalized = normalizeText(raw.text);
  const repaired = repairMojibakeCounted(normalized);
  const text = repaired.text.trim() === '' ? '' : repaired.text;
  if (!text) throw new AppError('validation_failed', 'the document contains no text');
  return {
    text,
    format: raw.format,
    ...(raw.title ? { title: repairMojibake(raw.title) } : {}),
    repairedSequences: repaired.repairs,
  };
}

/** Decodes text bytes; refuses data that is evidently binary. */
function decodeText(bytes: Uint8Array, charset: string | undefined): string {
  let text: string;
  const utf16 =
    charset?.startsWith('utf-16') || (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  try {
    const label = utf16
      ? charset === 'utf-16be' || bytes[0] === 0xfe
        ? 'utf-16be'
        : 'utf-16le'
      : charset === 'iso-8859-1' || charset === 'latin1' || charset === 'windows-1252'
        ? 'windows-1252'
        : 'utf-8';
    text = new TextDecoder(label).decode(bytes);
  } catch (err) {
    throw new AppError('validation_failed', `the text cannot be decoded as ${charset ?? 'utf-8'}`, { cause: err });
  }
  const sample = text.slice(0, 64 * 1024);
  let bad = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample.charCodeAt(i);
    if (c === 0xfffd || c === 0 || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c)) bad++;
  }
  if (sample.length > 0 && bad / sample.length > 0.05) {
    throw new AppError('validation_failed', 'the document is binary data, not text of the declared type');
  }
  return text;
}

function jsonText(source: string): string {
  let value: unknown;
  try {
    value = JSON.parse(source.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new AppError('validation_failed', `invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  const lines: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') {
      if (v === null || v === '') return;
      lines.push(path ? `${path}: ${String(v)}` : String(v));
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, `${path}[${i}]`));
      return;
    }
    for (const [k, child] of Object.entries(v)) walk(child, path ? `${path}.${k}` : k);
  };
  try {
    walk(value, '');
  } catch (err) {
    // Nesting deeper than the stack: the same document fails the same way on every retry.
    if (err instanceof RangeError) throw new AppError('validation_failed', 'the JSON is nested too deeply', { cause: err });
    throw err;
  }
  return lines.join('\n');
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  ndash: '–',
  mdash: '—',
  hellip: '…',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  bull: '•',
  middot: '·',
  copy: '©',
  reg: '®',
  trade: '™',
  euro: '€',
  times: '×',
  rarr: '→',
  larr: '←',
  deg: '°',
};

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

const BLOCK_TAGS =
  /^(p|div|section|article|header|footer|main|nav|aside|blockquote|ul|ol|table|thead|tbody|tfoot|form|figure|figcaption|pre|hr|dl|dt|dd|address)$/;

/*
 * HTML is scanned in time linear in its length, whatever it holds. The regex pipeline this
 * replaces (same output, kept pattern by pattern) backtracked quadratically on openers that are
 * never closed: 256 KiB of `<`, an unclosed `<!--` or `<script` held the event loop for
 * minutes. Two devices keep each step linear:
 * - a tag pattern `<name…[^>]*>` can only match before the last `>`, and there every opener
 *   it accepts does match (and is consumed), so it runs on that prefix only (`beforeLastGt`);
 * - a paired pattern `<name…>…</name>` is scanned with indexOf, remembering per name where
 *   the next closer is (or that there is none), so no stretch of text is searched twice.
 */

/** `s` with ASCII letters lower-cased: same length and indexes (`toLowerCase` may change both). */
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

const isWordChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;

/** `s.replace(re, fn)` for a pattern whose every match ends with the first `>` after its start (see above). */
function beforeLastGt(s: string, re: RegExp, fn: string | ((m: string, ...groups: string[]) => string)): string {
  const end = s.lastIndexOf('>') + 1;
  const head = s.slice(0, end);
  return (typeof fn === 'string' ? head.replace(re, fn) : head.replace(re, fn)) + s.slice(end);
}

/** `s.replace(/OPEN[\s\S]*?CLOSE/g, by)` for literal delimiters. */
function replaceDelimited(s: string, open: string, close: string, by: string): string {
  let out = '';
  let last = 0;
  for (;;) {
    const p = s.indexOf(open, last);
    if (p < 0) break;
    const c = s.indexOf(close, p + open.length);
    if (c < 0) break; // no closer after this opener, so none after any later one
    out += s.slice(last, p) + by;
    last = c + close.length;
  }
  return out + s.slice(last);
}

const CLOSE_TAIL = /\s*>/y;

/**
 * Replaces each element `<name\b…</name\s*>` (case-insensitive, the first closer after the
 * opener), as `s.replace(/<(a|b)\b[\s\S]*?<\/\1\s*>/gi, …)` would. With `bodyAfterTag` the body
 * starts after the opening tag's `>` (`<(a|b)\b[^>]*>([\s\S]*?)<\/\1\s*>`), otherwise right
 * after the name.
 */
function replaceElements(
  s: string,
  names: readonly string[],
  bodyAfterTag: boolean,
  fn: (name: string, body: string) => string,
): string {
  const lower = asciiLower(s);
  /** Per name: the first closer at or after `from`, or null when there is none. */
  const closers = new Map<string, { from: number; at: { start: number; end: number } | null }>();
  const closer = (name: string, from: number): { start: number; end: number } | null => {
    const known = closers.get(name);
    if (known && from >= known.from && (known.at === null || from <= known.at.start)) return known.at;
    let at: { start: number; end: number } | null = null;
    for (let i = lower.indexOf(`</${name}`, from); i >= 0; i = lower.indexOf(`</${name}`, i + 1)) {
      CLOSE_TAIL.lastIndex = i + 2 + name.length;
      if (CLOSE_TAIL.test(s)) {
        at = { start: i, end: CLOSE_TAIL.lastIndex };
        break;
      }
    }
    closers.set(name, { from, at });
    return at;
  };
  let gt = { from: 0, at: s.indexOf('>') };
  const nextGt = (from: number): number => {
    if (from > gt.at && gt.at >= 0) gt = { from, at: s.indexOf('>', from) };
    return gt.at;
  };
  let out = '';
  let last = 0;
  for (let p = lower.indexOf('<'); p >= 0; p = lower.indexOf('<', p + 1)) {
    if (p < last) continue;
    const name = names.find((n) => lower.startsWith(n, p + 1) && !isWordChar(s.charCodeAt(p + 1 + n.length)));
    if (name === undefined) continue;
    let bodyStart = p + 1 + name.length;
    if (bodyAfterTag) {
      const end = nextGt(bodyStart);
      if (end < 0) break; // no `>` after this opener, so none after any later one
      bodyStart = end + 1;
    }
    const close = closer(name, bodyStart);
    if (close === null) continue;
    out += s.slice(last, p) + fn(name, s.slice(bodyStart, close.start));
    last = close.end;
    p = last - 1;
  }
  return out + s.slice(last);
}

/** The text of the first `<title …>…</title>`, as `/<title[^>]*>([\s\S]*?)<\/title>/i` finds it. */
function titleOf(html: string): string | undefined {
  const lower = asciiLower(html);
  const open = lower.indexOf('<title');
  const gt = open < 0 ? -1 : html.indexOf('>', open + 6);
  const close = gt < 0 ? -1 : lower.indexOf('</title>', gt + 1);
  // If the first opener has no `>` or closer after it, no later opener has either.
  return close < 0 ? undefined : html.slice(gt + 1, close);
}

/** `s` without leading and trailing line feeds. */
function trimNewlines(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && s[start] === '\n') start++;
  while (end > start && s[end - 1] === '\n') end--;
  return s.slice(start, end);
}

const HIDDEN = ['script', 'style', 'noscript', 'template', 'svg', 'head', 'iframe', 'object'] as const;
const HEADINGS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'] as const;

/** HTML → markdown-ish text: headings become `#` headings, blocks become paragraphs, rows become `|` rows. */
function htmlText(html: string): { text: string; title?: string } {
  const rawTitle = titleOf(html);
  const title = rawTitle === undefined ? undefined : decodeEntities(rawTitle.replace(/\s+/g, ' ').trim());
  let s = replaceDelimited(html, '<!--', '-->', ' ');
  s = replaceDelimited(s, '<![CDATA[', ']]>', ' ');
  s = replaceElements(s, HIDDEN, false, () => ' ');
  s = beforeLastGt(s, /<(script|style|noscript|template|svg|head)\b[^>]*\/?>/gi, ' ');
  const pre: string[] = [];
  s = replaceElements(s, ['pre'], true, (_name, body) => {
    pre.push(decodeEntities(beforeLastGt(body, /<[^>]+>/g, '')));
    return `\n\n\u0000PRE${pre.length - 1}\u0000\n\n`;
  });
  s = replaceElements(s, HEADINGS, true, (name, body) => {
    const text = beforeLastGt(body, /<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    return text ? `\n\n${'#'.repeat(Number(name[1]))} ${text}\n\n` : '\n\n';
  });
  s = s.replace(/<br\s*\/?>/gi, '\n');
  s = beforeLastGt(s, /<li\b[^>]*>/gi, '\n- ');
  s = beforeLastGt(s, /<tr\b[^>]*>/gi, '\n|');
  s = s.replace(/<\/t[dh]\s*>/gi, ' |');
  s = beforeLastGt(s, /<\/?([a-z][a-z0-9]*)\b[^>]*>/gi, (_m, tag: string) => (BLOCK_TAGS.test(tag.toLowerCase()) ? '\n\n' : ' '));
  s = beforeLastGt(s, /<[^>]*>/g, ' ');
  s = decodeEntities(s)
    .split('\n')
    .map((l) => l.replace(/[ \t\f\v\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    // eslint-disable-next-line no-control-regex -- NUL delimits the placeholders this function inserted
    .replace(/\u0000PRE(\d+)\u0000/g, (_m, i: string) => `\`\`\`\n${trimNewlines(pre[Number(i)] ?? '')}\n\`\`\``);
  return { text: s.trim(), ...(title ? { title } : {}) };
}

async function pdfText(bytes: Uint8Array): Promise<{ text: string; format: 'plain'; title?: string }> {
  const head = Buffer.from(bytes.subarray(0, 1024)).toString('latin1');
  if (!head.includes('%PDF-')) throw new AppError('validation_failed', 'not a PDF (no %PDF- header)');
  let doc: Awaited<ReturnType<typeof getDocumentProxy>> | undefined;
  try {
    // pdf.js takes ownership of (detaches) the buffer it is given: pass a copy.
    doc = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0, isEvalSupported: false });
    const { text } = await extractText(doc, { mergePages: false });
    let title: string | undefined;
    try {
      const meta = await getMeta(doc);
      const t = (meta.info as Record<string, unknown> | undefined)?.['Title'];
      if (typeof t === 'string' && t.trim()) title = t.trim();
    } catch {
      // Metadata is optional; a PDF without readable metadata still has text.
    }
    const joined = text
      .map((p) => p.trim())
      .filter(Boolean)
      .join('\n\n');
    if (!joined)
      throw new AppError(
        'validation_failed',
        'the PDF has no extractable text (scanned images need OCR, which Meridian does not do)',
      );
    return { text: joined, format: 'plain', ...(title ? { title } : {}) };
  } catch (err) {
    if (err instanceof AppError) throw err;
    const name = (err as { name?: string }).name ?? 'Error';
    const reason =
      name === 'PasswordException'
        ? 'the PDF is encrypted'
        : name === 'InvalidPDFException'
          ? 'the PDF is corrupt (invalid structure)'
          : `the PDF cannot be read (${name}: ${(err as Error).message})`;
    throw new AppError('validation_failed', reason, { cause: err });
  } finally {
    await doc?.destroy().catch(() => undefined);
  }
}
