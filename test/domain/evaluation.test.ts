import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../src/config';
import { refusalOf } from '../../src/domain/coaching';
import { localVerdict, overallOf, parseModelVerdict } from '../../src/domain/evaluation';
import { homeRegionOf, routeInstance } from '../../src/domain/instance-ids';

const catalog = loadCatalog();
const rag = catalog.rubrics.find((r) => r.id === 'rag')!;
const criterion = (id: string) => rag.criteria.find((c) => c.id === id)!;

describe('local evaluator (deterministic heuristic)', () => {
  const contexts = [
    'Full-time employees receive 25 vacation days per year. Unused days carry over until March.',
    'Parental leave is 16 weeks at full pay.',
  ];
  const question = 'How many vacation days do employees get per year?';

  it('scores a grounded answer higher on groundedness than an ungrounded one, and says it is a heuristic', () => {
    const grounded = localVerdict(criterion('groundedness'), {
      kind: 'rag',
      question,
      contexts,
      answer: 'Employees receive 25 vacation days per year [1]. Unused days carry over until March [1].',
    });
    const ungrounded = localVerdict(criterion('groundedness'), {
      kind: 'rag',
      question,
      contexts,
      answer: 'Staff get unlimited holidays. Managers approve sabbaticals after five years.',
    });
    expect(grounded.score).toBe(1);
    expect(ungrounded.score).toBe(0);
    expect(grounded.rationale).toMatch(/^local heuristic:/);
  });

  it('checks citations against the passage they name', () => {
    const verdict = localVerdict(criterion('citation-accuracy'), {
      kind: 'rag',
      question,
      contexts,
      answer: 'Employees receive 25 vacation days per year [2]. Parental leave is 16 weeks [2].',
    });
    expect(verdict.score).toBe(0.5);
  });

  it('scores the sales rubric from the trainee turns only', () => {
    const rubric = catalog.rubrics.find((r) => r.id === 'sales-discovery')!;
    const transcript = [
      { role: 'user', content: 'What does your process look like today? How do you track shipments? Why now?' },
      { role: 'assistant', content: 'We use spreadsheets. Can we schedule a demo next week?' },
    ];
    const scores = rubric.criteria.map((c) => localVerdict(c, { kind: 'transcript', transcript }).score);
    expect(scores).toEqual([1, 0, 0]);
  });
});

describe('model verdicts and the overall score', () => {
  it('accepts exactly {score, rationale} with a score in [0, 1]', () => {
    expect(parseModelVerdict('{"score":0.5,"rationale":"fine"}')).toEqual({ ok: true, score: 0.5, rationale: 'fine' });
    expect(parseModelVerdict('Sure! {"score":0.5}')).toMatchObject({ ok: false, reason: 'the output is not JSON' });
    expect(parseModelVerdict('{"score":7,"rationale":"x"}')).toMatchObject({ ok: false });
    expect(parseModelVerdict('{"score":0.2,"rationale":"x","extra":1}')).toMatchObject({ ok: false });
  });

  it('averages the criteria that did not fail, by weight', () => {
    expect(
      overallOf(
        [
          { id: 'a', score: 1 },
          { id: 'b', score: 0 },
          { id: 'c', score: 0, failed: true },
        ],
        { a: 3, b: 1 },
      ),
    ).toBe(0.75);
    expect(overallOf([{ id: 'a', score: 0, failed: true }], {})).toBeUndefined();
  });
});

describe('session gate and instance routing', () => {
  const limits = { idleTimeoutMs: 300_000, maxDurationMs: 900_000, maxExchanges: 2 };
  const gate = { status: 'active' as const, exchanges: 0, limits, startedAtMs: 0, lastActivityAtMs: 0 };
  it('refuses closed, capped, idle and overlong sessions from the document alone', () => {
    expect(refusalOf(gate, 1000)).toBeUndefined();
    expect(refusalOf({ ...gate, status: 'evaluating' }, 1000)).toMatch(/evaluating/);
    expect(refusalOf({ ...gate, exchanges: 2 }, 1000)).toMatch(/limit of 2/);
    expect(refusalOf(gate, 300_000)).toMatch(/idle/);
    expect(refusalOf({ ...gate, lastActivityAtMs: 800_000 }, 900_000)).toMatch(/maximum duration/);
  });

  it('serves ids of served regions, redirects to another region of the boundary, hides other boundaries', () => {
    const here = {
      servedRegions: ['eastus'],
      boundary: 'us',
      boundaryOf: (r: string) => ({ eastus: 'us', westus2: 'us', westeurope: 'eu' })[r],
    };
    const id = (region: string) => `${region}-${'a'.repeat(32)}`;
    expect(homeRegionOf(`${id('westus2')}:evaluation`)).toBe('westus2');
    expect(routeInstance(id('eastus'), here)).toEqual({ kind: 'here' });
    expect(routeInstance(id('westus2'), here)).toEqual({ kind: 'redirect', region: 'westus2' });
    expect(routeInstance(id('westeurope'), here)).toEqual({ kind: 'not_found' });
    expect(routeInstance('nonsense', here)).toEqual({ kind: 'not_found' });
    expect(routeInstance(id('westus2'), { ...here, servedRegions: ['eastus', 'westus2'] })).toEqual({ kind: 'here' });
  });
});
