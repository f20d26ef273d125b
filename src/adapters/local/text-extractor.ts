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
  walk(value, '');
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

/** HTML → markdown-ish text: headings become `#` headings, blocks become paragraphs, rows become `|` rows. */
function htmlText(html: string): { text: string; title?: string } {
  const titleMatch = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  const title = titleMatch ? decodeEntities((titleMatch[1] ?? '').replace(/\s+/g, ' ').trim()) : undefined;
  let s = html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, ' ')
    .replace(/<(script|style|noscript|template|svg|head|iframe|object)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<(script|style|noscript|template|svg|head)\b[^>]*\/?>/gi, ' ');
  const pre: string[] = [];
  s = s.replace(/<pre\b[^>]*>([\s\S]*?)<\/pre\s*>/gi, (_m, body: string) => {
    pre.push(decodeEntities(body.replace(/<[^>]+>/g, '')));
    return `\n\n\u0000PRE${pre.length - 1}\u0000\n\n`;
  });
  s = s
    .replace(/<h([1-6])\b[^>]*>([\s\S]*?)<\/h\1\s*>/gi, (_m, level: string, body: string) => {
      const text = body
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim();
      return text ? `\n\n${'#'.repeat(Number(level))} ${text}\n\n` : '\n\n';
    })
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<tr\b[^>]*>/gi, '\n|')
    .replace(/<\/t[dh]\s*>/gi, ' |')
    .replace(/<\/?([a-z][a-z0-9]*)\b[^>]*>/gi, (_m, tag: string) => (BLOCK_TAGS.test(tag.toLowerCase()) ? '\n\n' : ' '))
    .replace(/<[^>]*>/g, ' ');
  s = decodeEntities(s)
    .split('\n')
    .map((l) => l.replace(/[ \t\f\v\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    // eslint-disable-next-line no-control-regex -- NUL delimits the placeholders this function inserted
    .replace(/\u0000PRE(\d+)\u0000/g, (_m, i: string) => `\`\`\`\n${(pre[Number(i)] ?? '').replace(/^\n+|\n+$/g, '')}\n\`\`\``);
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
