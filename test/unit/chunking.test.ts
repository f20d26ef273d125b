import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { countTokens as o200kCount } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens } from '../../src/adapters/local/token-counter';
import { chunkDocument, chunkId, embeddingText, type Chunk } from '../../src/domain/chunking';

const CORPUS = '/work/shared/corpus';
const corpusFiles = readdirSync(CORPUS).filter((f) => f.endsWith('.md') && f !== 'README.md');
/** The text with fenced code replaced by blank lines (tables inside code are code). */
function outsideFences(text: string): string {
  let inFence = false;
  return text
    .split('\n')
    .map((l) => {
      const fence = /^ {0,3}(```|~~~)(.*)$/.exec(l);
      if (fence) {
        // Outside, any fence opens; inside, only a bare fence closes (CommonMark).
        if (!inFence) inFence = true;
        else if (!(fence[2] ?? '').trim()) inFence = false;
        return '';
      }
      return inFence ? '' : l;
    })
    .join('\n');
}
const chunk = (text: string, opts = {}): Chunk[] => chunkDocument({ documentId: 'doc', version: 3, text }, countTokens, opts);

describe('chunkDocument on the sample corpus', () => {
  it('finds the five corpus files', () => {
    expect(corpusFiles).toHaveLength(5);
  });

  for (const file of corpusFiles) {
    it(`${file}: bounded, ordered, stable ids, nothing lost`, () => {
      const text = readFileSync(path.join(CORPUS, file), 'utf8');
      const chunks = chunk(text);
      expect(chunks.length).toBeGreaterThan(3);
      chunks.forEach((c, i) => {
        expect(c.ordinal).toBe(i);
        expect(c.id).toBe(chunkId('doc', 3, i));
        expect(c.tokenCount).toBe(countTokens(c.content));
        expect(c.tokenCount).toBeLessThanOrEqual(400);
        expect(c.content.trim()).not.toBe('');
      });
      // Every non-heading word of the source appears in some chunk (nothing dropped).
      const all = chunks.map((c) => c.content).join('\n');
      const words = text
        .split('\n')
        .filter((l) => !/^ {0,3}#{1,6}\s/.test(l))
        .join(' ')
        .split(/\s+/)
        .filter((w) => w.length > 3);
      const missing = words.filter((w) => !all.includes(w));
      expect(missing).toEqual([]);
      // Deterministic.
      expect(chunk(text)).toEqual(chunks);
    });
  }

  it('carries heading paths', () => {
    const text = readFileSync(path.join(CORPUS, 'pulse-capacity-planning.md'), 'utf8');
    const chunks = chunk(text);
    expect(
      chunks.some(
        (c) =>
          c.headingPath ===
          'PULSE Platform Capacity Planning Guide > Capacity Analysis - Current State > Bottleneck Identification > 1. Azure OpenAI Audio Realtime (PRIMARY BOTTLENECK)',
      ),
    ).toBe(true);
  });

  it('keeps every corpus table and code block that fits whole in one chunk', () => {
    let checked = 0;
    for (const file of corpusFiles) {
      const text = readFileSync(path.join(CORPUS, file), 'utf8');
      const chunks = chunk(text);
      // Fenced blocks with no other fence line inside (CommonMark pairs indented fences differently).
      const blocks = [...text.matchAll(/^```[^\n]*\n(?:(?! {0,3}```)[^\n]*\n)*?```[ \t]*$/gm)].map((m) => m[0]);
      const tables = [...outsideFences(text).matchAll(/(?:^\|.*\n?)+/gm)].map((m) => m[0].trimEnd());
      for (const b of [...blocks, ...tables]) {
        if (countTokens(b) > 380) continue;
        checked++;
        expect(
          chunks.some((c) => c.content.includes(b)),
          `${file}: ${b.slice(0, 80)}`,
        ).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});

describe('chunkDocument rules', () => {
  const sentence = (i: number): string =>
    `Sentence number ${i} explains how the regional failover keeps tenant data inside its boundary.`;

  it('overlaps consecutive prose chunks of one section', () => {
    const text = `# Title\n\n${Array.from({ length: 80 }, (_, i) => sentence(i)).join(' ')}`;
    const chunks = chunk(text, { maxTokens: 120, overlapTokens: 30 });
    expect(chunks.length).toBeGreaterThan(3);
    for (let i = 1; i < chunks.length; i++) {
      const prev = chunks[i - 1] as Chunk;
      const cur = chunks[i] as Chunk;
      const firstSentence = cur.content.split(/(?<=\.) /)[0] as string;
      expect(prev.content.endsWith(firstSentence)).toBe(true);
      expect(cur.tokenCount).toBeLessThanOrEqual(120);
    }
  });

  it('does not overlap across headings and starts a chunk at every section', () => {
    const chunks = chunk('# A\n\nalpha text.\n\n## B\n\nbeta text.\n\n# C\n\ngamma.');
    expect(chunks.map((c) => [c.headingPath, c.content])).toEqual([
      ['A', 'alpha text.'],
      ['A > B', 'beta text.'],
      ['C', 'gamma.'],
    ]);
  });

  it('splits a large table between rows, repeating the header', () => {
    const rows = Array.from({ length: 60 }, (_, i) => `| row ${i} | value ${i * 7} | Azure region eastus and westus2 |`);
    const text = `| name | value | note |\n|---|---|---|\n${rows.join('\n')}`;
    const chunks = chunk(text, { maxTokens: 150, overlapTokens: 20 });
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) {
      expect(c.content.startsWith('| name | value | note |\n|---|---|---|\n| row')).toBe(true);
      expect(c.tokenCount).toBeLessThanOrEqual(150);
    }
    const seen = chunks.flatMap((c) => c.content.split('\n').slice(2));
    expect(seen).toEqual(rows);
  });

  it('splits a large code block between lines, re-fencing each piece', () => {
    const lines = Array.from({ length: 80 }, (_, i) => `const value${i} = compute(${i}, "eastus");`);
    const chunks = chunk(`Intro.\n\n\`\`\`ts\n${lines.join('\n')}\n\`\`\`\n`, { maxTokens: 120, overlapTokens: 20 });
    const code = chunks.map((c) => c.content.slice(c.content.indexOf('```ts'))).filter((c) => c.startsWith('```ts'));
    expect(code.length).toBeGreaterThan(2);
    for (const c of code) expect(c.endsWith('```')).toBe(true);
    expect(code.flatMap((c) => c.split('\n').slice(1, -1))).toEqual(lines);
  });

  it('treats # in plain text as text', () => {
    const chunks = chunk('# not a heading\nbody', { format: 'plain' });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.headingPath).toBe('');
    expect(chunks[0]?.content).toBe('# not a heading\nbody');
  });

  it('splits an unbroken run longer than the bound by characters', () => {
    const run = 'x9'.repeat(3000);
    const chunks = chunk(`before\n\n${run}\n\nafter`, { maxTokens: 64, overlapTokens: 8 });
    for (const c of chunks) expect(c.tokenCount).toBeLessThanOrEqual(64);
    expect(
      chunks
        .map((c) => c.content)
        .join('')
        .replace(/before|after|\s/g, ''),
    ).toContain(run.slice(0, 500));
  });

  it('embeddingText prefixes the heading path', () => {
    expect(embeddingText({ headingPath: 'A > B', content: 'x' })).toBe('A > B\n\nx');
    expect(embeddingText({ headingPath: '', content: 'x' })).toBe('x');
  });

  it('never exceeds the bound on arbitrary text (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('\n', '\n\n', '# H\n', '| a | b |\n', '```\n', '. ', ' ')),
          { maxLength: 60 },
        ),
        (parts) => {
          const chunks = chunk(parts.join(''), { maxTokens: 40, overlapTokens: 10 });
          for (const c of chunks) {
            expect(c.tokenCount).toBeLessThanOrEqual(40);
            expect(c.tokenCount).toBe(countTokens(c.content));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects nonsensical options', () => {
    expect(() => chunk('x', { maxTokens: 8 })).toThrow(RangeError);
    expect(() => chunk('x', { maxTokens: 100, overlapTokens: 60 })).toThrow(RangeError);
  });
});

/**
 * Uploaded text reaches the chunker unchecked, so every line pattern and the token counter must
 * take time linear in the line. Each case took seconds to minutes before (the heading line
 * 33 s, the spaces as prose 23 s in gpt-tokenizer); each must now finish well inside a second.
 * The elapsed time is asserted, not left to the test timeout: blocking code cannot be timed out.
 */
describe('chunkDocument on adversarial lines', () => {
  const KiB = 1024;
  const timed = <T>(f: () => T): { value: T; ms: number } => {
    const t = performance.now();
    const value = f();
    return { value, ms: performance.now() - t };
  };
  const cases: [string, string, 'markdown' | 'plain'][] = [
    ['a 128 KiB heading line', `# a${' '.repeat(128 * KiB)}x\nbody`, 'markdown'],
    ['a 128 KiB heading line as plain text', `# a${' '.repeat(128 * KiB)}x\n`, 'plain'],
    ['a heading-like line broken by U+2028', `# a${' '.repeat(128 * KiB)}\u2028x\n`, 'markdown'],
    ['a fence-like line broken by U+2028', `${'`'.repeat(64 * KiB)}${'a'.repeat(64 * KiB)}\u2028\n`, 'markdown'],
    ['a closing-hash run', `# a${' \t'.repeat(64 * KiB)}#${'#'.repeat(64 * KiB)} x\nbody`, 'markdown'],
    [
      'an over-long table separator',
      `| a |\n|${' '.repeat(128 * KiB)}--${' '.repeat(128 * KiB)}x\n${'| b |\n'.repeat(200)}`,
      'markdown',
    ],
    ['a 128 KiB run of one letter', 'a'.repeat(128 * KiB), 'plain'],
    ['sentence ends followed by long space runs', `${`End.${' '.repeat(4 * KiB)}x `.repeat(32)}`, 'plain'],
  ];
  for (const [name, text, format] of cases) {
    it(`${name} (${format}) takes well under a second`, () => {
      const { value: chunks, ms } = timed(() => chunk(text, { format }));
      expect(ms).toBeLessThan(1500);
      expect(chunks.length).toBeGreaterThan(0);
      for (const c of chunks) expect(c.tokenCount).toBeLessThanOrEqual(400);
    });
  }

  it('still reads the long heading as a heading, its text trimmed', () => {
    const chunks = chunk(`# a${' '.repeat(128 * KiB)}x ##\n\nbody`);
    expect(chunks.map((c) => [c.headingPath.replace(/ +/, ' '), c.content])).toEqual([['a x', 'body']]);
  });

  it('counts long runs in bounded time, and normal text exactly', () => {
    expect(timed(() => countTokens(' '.repeat(256 * KiB) + 'x')).ms).toBeLessThan(1500);
    expect(timed(() => countTokens('ab'.repeat(128 * KiB))).ms).toBeLessThan(1500);
    const text = readFileSync(path.join(CORPUS, corpusFiles[0] as string), 'utf8');
    expect(countTokens(text)).toBe(o200kCount(text, { disallowedSpecial: new Set() }));
  });
});
