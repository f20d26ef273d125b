import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSqlFilter, SqlFilterEvaluationError, SqlFilterSyntaxError } from '../../src/domain/sqlfilter';

const tokens = [
  'x',
  'y',
  'name',
  'sys.Label',
  'user.x',
  '[a b]',
  '1',
  '2.5',
  '1e3',
  "'a%'",
  "''",
  'NULL',
  'TRUE',
  '=',
  '<>',
  '!=',
  '>',
  '>=',
  '<',
  '<=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '(',
  ')',
  ',',
  'AND',
  'OR',
  'NOT',
  'IN',
  'LIKE',
  'ESCAPE',
  'IS',
  'EXISTS',
  'newid()',
  '.',
  '[',
  "'",
];
const propValue = fc.oneof(
  fc.constant(null),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.string({ maxLength: 4 }),
);

describe('SqlFilter robustness', () => {
  it('any text either compiles or fails with SqlFilterSyntaxError at a position inside it', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.array(fc.constantFrom(...tokens), { maxLength: 12 }).map((t) => t.join(' ')),
        ),
        (src) => {
          try {
            compileSqlFilter(src);
          } catch (err) {
            expect(err).toBeInstanceOf(SqlFilterSyntaxError);
            const pos = (err as SqlFilterSyntaxError).position;
            expect(pos).toBeGreaterThanOrEqual(1);
            expect(pos).toBeLessThanOrEqual(src.length + 1);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a compiled filter gives true/false or SqlFilterEvaluationError, never anything else', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 12 }).map((t) => t.join(' ')),
        fc.record({ x: propValue, y: propValue, name: propValue, 'a b': propValue }, { requiredKeys: [] }),
        (src, props) => {
          let filter;
          try {
            filter = compileSqlFilter(src);
          } catch {
            return;
          }
          try {
            expect(typeof filter.matches({ applicationProperties: props, systemProperties: { subject: 'a' } })).toBe('boolean');
          } catch (err) {
            expect(err).toBeInstanceOf(SqlFilterEvaluationError);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('NOT flips a known result and keeps unknown unknown (three-valued logic)', () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }), fc.integer({ min: 0, max: 3 }), (x, k) => {
        const props = x === undefined ? {} : { x };
        const p = compileSqlFilter(`x = ${k}`).matches({ applicationProperties: props });
        const notP = compileSqlFilter(`NOT (x = ${k})`).matches({ applicationProperties: props });
        if (x === undefined) expect([p, notP]).toEqual([false, false]);
        else expect(notP).toBe(!p);
      }),
    );
  });
});
