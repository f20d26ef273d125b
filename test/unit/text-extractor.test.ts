import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LocalTextExtractor } from '../../src/adapters/local/text-extractor';
import { repairMojibake } from '../../src/domain/text';
import { tinyPdf } from '../helpers/pdf';
import { appErrorOf } from '../helpers/errors';

const x = new LocalTextExtractor();
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('LocalTextExtractor', () => {
  it('passes markdown through, normalising line ends and the BOM', async () => {
    const r = await x.extract(bytes('\uFEFF# Title\r\n\r\nBody text.\r\n'), 'text/markdown; charset=utf-8');
    expect(r).toEqual({ text: '# Title\n\nBody text.\n', format: 'markdown', repairedSequences: 0 });
  });

  it('extracts plain text as plain', async () => {
    expect((await x.extract(bytes('# not a heading'), 'text/plain')).format).toBe('plain');
  });

  it('strips HTML tags, scripts and styles and keeps headings as markdown headings', async () => {
    const html = `<!doctype html><html><head><title>Runbook &amp; Notes</title><style>h1{color:red}</style>
      <script>alert("x")</script></head><body><h1>Failover</h1><p>Cosmos DB fails over <b>inside</b> the boundary&nbsp;only.</p>
      <!-- hidden comment --><h2 class="x">Steps</h2><ul><li>Detect</li><li>Promote</li></ul>
      <table><tr><th>Region</th><th>Role</th></tr><tr><td>eastus</td><td>primary</td></tr></table>
      <pre>az cosmosdb failover-priority-change
  --name x</pre><noscript>enable JS</noscript></body></html>`;
    const r = await x.extract(bytes(html), 'text/html');
    expect(r.title).toBe('Runbook & Notes');
    expect(r.format).toBe('markdown');
    expect(r.text).toContain('# Failover\n\nCosmos DB fails over inside the boundary only.');
    expect(r.text).toContain('## Steps');
    expect(r.text).toContain('- Detect\n- Promote');
    expect(r.text).toContain('| Region | Role |\n| eastus | primary |');
    expect(r.text).toContain('```\naz cosmosdb failover-priority-change\n  --name x\n```');
    for (const gone of ['alert', 'color:red', 'hidden comment', 'enable JS', '<', '&amp;']) expect(r.text).not.toContain(gone);
  });

  it('flattens JSON into key paths and values', async () => {
    const r = await x.extract(
      bytes(JSON.stringify({ name: 'policy', rules: [{ region: 'eu', days: 30 }, { region: 'us' }], empty: null, ok: true })),
      'application/json',
    );
    expect(r).toEqual({
      text: 'name: policy\nrules[0].region: eu\nrules[0].days: 30\nrules[1].region: us\nok: true',
      format: 'plain',
      repairedSequences: 0,
    });
  });

  it('refuses invalid JSON with the reason', async () => {
    const err = await appErrorOf(x.extract(bytes('{"a": '), 'application/json'));
    expect(err.code).toBe('validation_failed');
    expect(err.message).toMatch(/^invalid JSON/);
  });

  it('extracts the text and title of a hand-made PDF', async () => {
    const r = await x.extract(
      tinyPdf(['Meridian keeps tenant data in its boundary.', 'Second line (with parentheses).'], 'Residency Memo'),
      'application/pdf',
    );
    expect(r.format).toBe('plain');
    expect(r.title).toBe('Residency Memo');
    expect(r.text).toContain('Meridian keeps tenant data in its boundary.');
    expect(r.text).toContain('Second line (with parentheses).');
  });

  it('refuses a corrupt PDF with a reason, and non-PDF bytes declared as PDF', async () => {
    const pdf = tinyPdf(['hello']);
    const corrupt = await appErrorOf(x.extract(pdf.slice(0, 120), 'application/pdf'));
    expect(corrupt.code).toBe('validation_failed');
    expect(corrupt.message).toMatch(/PDF/);
    const notPdf = await appErrorOf(x.extract(bytes('just text'), 'application/pdf'));
    expect(notPdf.code).toBe('validation_failed');
    expect(notPdf.message).toContain('not a PDF');
  });

  it('refuses an unsupported type and binary data sent as text', async () => {
    const unsupported = await appErrorOf(x.extract(bytes('x'), 'image/png'));
    expect(unsupported.code).toBe('unsupported_media_type');
    expect(unsupported.status).toBe(415);
    const binary = await appErrorOf(
      x.extract(new Uint8Array(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)), 'text/plain'),
    );
    expect(binary.code).toBe('validation_failed');
    const empty = await appErrorOf(x.extract(bytes('  \n '), 'text/plain'));
    expect(empty.message).toContain('no text');
  });

  it('repairs the mojibake of the corpus file and counts the repairs', async () => {
    const raw = readFileSync('/work/shared/corpus/scale-or-fail-exercise.md');
    const r = await x.extract(raw, 'text/markdown');
    expect(r.repairedSequences).toBeGreaterThan(10);
    expect(r.text).not.toMatch(/â€|Ã—|â”/);
    expect(r.text).toContain('200 stores × docs/store');
    expect(r.text).toContain('│ • Container Apps');
  });
});

/**
 * Uploaded HTML reaches the extractor unchecked, so it must take time linear in its length. Each
 * of these took from seconds to minutes before (256 KiB of `<`: ~46 s; unclosed `<!--` or
 * `<script`: ~18 s), blocking the loop that serves every tenant. The elapsed time is asserted
 * (blocking code cannot be timed out by the test runner).
 */
describe('LocalTextExtractor on adversarial HTML', () => {
  const KiB = 1024;
  const unclosed = (unit: string) => `a ${unit.repeat(Math.floor((256 * KiB) / unit.length))}`;
  const cases: [string, string][] = [
    ['256 KiB of <', unclosed('<')],
    ['unclosed <!--', unclosed('<!--')],
    ['unclosed <![CDATA[', unclosed('<![CDATA[')],
    ['unclosed <script', unclosed('<script ')],
    ['unclosed <script with closers of another tag', `${unclosed('<script ')}</style>`],
    ['unclosed <pre> and <h1>', unclosed('<pre><h1>')],
    ['openers without >', unclosed('<pre <h2 <title <li <tr <p ')],
    ['closers followed by spaces, not >', `<script>${`</script${' '.repeat(64)}x`.repeat(2 * KiB)}`],
    ['newline runs inside <pre>', `<pre>${'\n'.repeat(128 * KiB)}x${'\n'.repeat(128 * KiB)}x</pre>`],
  ];
  for (const [name, html] of cases) {
    it(`${name}: well under a second`, async () => {
      const t = performance.now();
      await x.extract(bytes(html), 'text/html').catch(() => undefined);
      expect(performance.now() - t).toBeLessThan(1500);
    });
  }

  it('keeps the text around an unclosed comment or script as before', async () => {
    const r = await x.extract(bytes('<h1>Title</h1><p>kept</p><!-- open <script> x <b>y</b>'), 'text/html');
    expect(r.text).toBe('# Title\n\nkept\n\n<!-- open x y');
  });

  it('refuses JSON nested deeper than the stack as invalid, not as a transient error', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const err = await appErrorOf(x.extract(bytes(deep), 'application/json'));
    expect(err.code).toBe('validation_failed');
  });
});

describe('repairMojibake', () => {
  it('repairs UTF-8 read as Windows-1252 and leaves clean text alone', () => {
    expect(repairMojibake('itâ€™s â€œquotedâ€ and â€œlostâ€\u009d â€” cafÃ© â†’ ðŸ˜€')).toBe(
      'it’s “quoted” and “lost” — café → 😀',
    );
    for (const clean of ['café au lait', 'Ãx', 'naïve façade', 'plain ascii', 'Â', '']) expect(repairMojibake(clean)).toBe(clean);
  });
});
