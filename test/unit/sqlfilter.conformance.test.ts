import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compileSqlFilter,
  FalseFilter,
  type FilterMessage,
  SqlFilterEvaluationError,
  SqlFilterSyntaxError,
  TrueFilter,
} from '../../src/domain/sqlfilter';

type Props = Record<string, string | number | boolean | null>;
type Expect = 'match' | 'nomatch' | 'eval-error' | { syntax: number };
type Row = [expression: string, props: Props, expected: Expect, sys?: Props];

const topology = JSON.parse(readFileSync(path.join(__dirname, '../../config/topology.json'), 'utf8')) as {
  subscriptions: { name: string; filter: string }[];
};
const usFilter = "targetRegion = 'us' OR targetRegion = 'all'";
const euFilter = "targetRegion = 'eu' OR targetRegion = 'all'";

const rows: Row[] = [
  // comparison operators
  ['x = 1', { x: 1 }, 'match'],
  ['x = 1', { x: 2 }, 'nomatch'],
  ['x <> 1', { x: 2 }, 'match'],
  ['x <> 1', { x: 1 }, 'nomatch'],
  ['x != 1', { x: 2 }, 'match'],
  ['x > 1', { x: 2 }, 'match'],
  ['x > 1', { x: 1 }, 'nomatch'],
  ['x >= 1', { x: 1 }, 'match'],
  ['x < 1.5', { x: 1 }, 'match'],
  ['x <= 1', { x: 1.5 }, 'nomatch'],
  ['x = 1.0', { x: 1 }, 'match'], // long promoted to double
  ['x = 1e0', { x: 1 }, 'match'],
  ['x > 2.5E-1', { x: 0.3 }, 'match'],
  ["name = 'abc'", { name: 'abc' }, 'match'],
  ["name = 'ABC'", { name: 'abc' }, 'nomatch'], // ordinal, case-sensitive
  ["name = 'it''s'", { name: "it's" }, 'match'],
  ['flag = TRUE', { flag: true }, 'match'],
  ['flag = false', { flag: true }, 'nomatch'],
  ["x = '1'", { x: 1 }, 'eval-error'], // no implicit string/number conversion
  ["name > 'a'", { name: 'b' }, 'eval-error'], // C# has no ordering on strings
  ['flag > TRUE', { flag: true }, 'eval-error'],
  // AND / OR / NOT, three-valued logic
  ['x = 1 AND y = 2', { x: 1, y: 2 }, 'match'],
  ['x = 1 AND y = 2', { x: 1, y: 3 }, 'nomatch'],
  ['x = 1 or y = 2', { x: 0, y: 2 }, 'match'],
  ['NOT x = 1', { x: 2 }, 'match'],
  ['NOT (x = 1)', {}, 'nomatch'], // NOT unknown is unknown
  ['x <> 1', {}, 'nomatch'],
  ['x = 1 OR y = 2', { y: 2 }, 'match'], // unknown OR true
  ['x = 1 AND y = 2', { y: 2 }, 'nomatch'], // unknown AND true
  ['NOT (x = 1 AND y = 2)', { y: 3 }, 'match'], // NOT (unknown AND false) = true
  ['NOT (x = 1 OR y = 2)', { y: 3 }, 'nomatch'], // NOT (unknown OR false) = unknown
  ['x = 1 OR y = 2 AND z = 3', { x: 1 }, 'match'], // AND binds tighter than OR
  ['(x = 1 OR y = 2) AND z = 3', { x: 1 }, 'nomatch'],
  ['x = 0 AND 1/0 = 1', { x: 1 }, 'nomatch'], // short-circuits
  // NULL / IS NULL / EXISTS
  ['x IS NULL', {}, 'match'],
  ['x IS NULL', { x: null }, 'match'],
  ['x IS NULL', { x: 0 }, 'nomatch'],
  ['x IS NOT NULL', { x: 0 }, 'match'],
  ['x IS NOT NULL', {}, 'nomatch'],
  ['x = NULL', { x: null }, 'nomatch'], // comparisons with NULL are unknown
  ['EXISTS(x)', { x: null }, 'match'],
  ['EXISTS (x)', {}, 'nomatch'],
  ['NOT EXISTS(x)', {}, 'match'],
  // IN / NOT IN
  ['x IN (1, 2)', { x: 2 }, 'match'],
  ['x IN (1, 2)', { x: 3 }, 'nomatch'],
  ['x IN (1, 2)', {}, 'nomatch'],
  ['x NOT IN (1, 2)', { x: 3 }, 'match'],
  ['x NOT IN (1, 2)', {}, 'nomatch'],
  ['x NOT IN (1, NULL)', { x: 3 }, 'nomatch'], // unknown because of the NULL element
  ["region in ('us', 'eu')", { region: 'eu' }, 'match'],
  ["x IN ('1')", { x: 1 }, 'eval-error'],
  // LIKE
  ["name LIKE 'a%'", { name: 'abc' }, 'match'],
  ["name LIKE 'a_c'", { name: 'abc' }, 'match'],
  ["name LIKE 'a_c'", { name: 'abbc' }, 'nomatch'],
  ["name LIKE '%b%'", { name: 'abc' }, 'match'],
  ["name NOT LIKE 'a%'", { name: 'abc' }, 'nomatch'],
  ["name NOT LIKE 'a%'", {}, 'nomatch'],
  ["name LIKE 'a!%b' ESCAPE '!'", { name: 'a%b' }, 'match'],
  ["name LIKE 'a!%b' ESCAPE '!'", { name: 'axb' }, 'nomatch'],
  ["name LIKE 'a.c'", { name: 'abc' }, 'nomatch'], // regex metacharacters are literal
  ["name LIKE 'a%' ESCAPE 'xy'", { name: 'abc' }, 'eval-error'],
  ["x LIKE '1%'", { x: 12 }, 'eval-error'],
  // arithmetic
  ['x + 1 = 3', { x: 2 }, 'match'],
  ['x - 1 = 1', { x: 2 }, 'match'],
  ['x * 2 = 4', { x: 2 }, 'match'],
  ['x / 2 = 1', { x: 3 }, 'match'], // integer division truncates
  ['x / 2.0 = 1.5', { x: 3 }, 'match'],
  ['x % 2 = 1', { x: 3 }, 'match'],
  ['-x = -3', { x: 3 }, 'match'],
  ['-(x) + +2 = -1', { x: 3 }, 'match'],
  ['2 + 3 * 4 = 14', {}, 'match'],
  ['(2 + 3) * 4 = 20', {}, 'match'],
  ['x + 1 = 3', {}, 'nomatch'], // unknown arithmetic
  ["a + b = 'xy'", { a: 'x', b: 'y' }, 'match'], // string concatenation
  ['1/0 = 1', {}, 'eval-error'],
  ['x % 0 = 1', { x: 1 }, 'eval-error'],
  ['1.0/0 > 1', {}, 'match'], // double division gives +Infinity (C#)
  ["x + 1 = 'a1'", { x: 'a' }, 'match'], // string + number concatenates (C#)
  ['x + 1 = 2', { x: 'a' }, 'eval-error'], // ... and 'a1' = 2 compares string with integer
  ['flag + 1 = 2', { flag: true }, 'eval-error'],
  // properties: scopes, brackets, case
  ["sys.Label = 'x'", {}, 'match', { subject: 'x' }],
  ["sys.label = 'x'", {}, 'match', { Label: 'x' }],
  ["SYS.SUBJECT = 'x'", {}, 'match', { subject: 'x' }],
  ["sys.MessageId = 'm1'", {}, 'match', { messageId: 'm1' }],
  ["sys.ContentType = 'application/json'", {}, 'match', { contentType: 'application/json' }],
  ['sys.CorrelationId IS NULL', {}, 'match', { messageId: 'm1' }],
  ["sys.To = 'x'", {}, 'nomatch'],
  ["sys.NoSuchProperty = 'x'", {}, 'eval-error'],
  ["user.name = 'a'", { name: 'a' }, 'match'],
  ["[my prop] = 'a'", { 'my prop': 'a' }, 'match'],
  ["user.[and] = 'a'", { and: 'a' }, 'match'],
  ["Name = 'a'", { name: 'a' }, 'nomatch'], // user property names are exact
  ["property('x') = 1", { x: 1 }, 'match'],
  ['newid() IS NULL', {}, { syntax: 1 }], // IS NULL takes a property only
  // keywords case-insensitive
  ["x in (1) AnD name lIkE 'a%' oR y iS nUlL", { x: 1, name: 'ab' }, 'match'],
  ['TRUE', {}, 'match'],
  ['FALSE', {}, 'nomatch'],
  ['1=1', {}, 'match'],
  ['1=0', {}, 'nomatch'],
  // syntax errors with 1-based positions
  ['', {}, { syntax: 1 }],
  ['x =', {}, { syntax: 4 }],
  ["x = 'abc", {}, { syntax: 5 }],
  ['x = 1 AND', {}, { syntax: 10 }],
  ['x = = 1', {}, { syntax: 5 }],
  ['(x = 1', {}, { syntax: 7 }],
  ['x = 1)', {}, { syntax: 6 }],
  ['x IN ()', {}, { syntax: 7 }],
  ['x IN (1,', {}, { syntax: 9 }],
  ['x', {}, { syntax: 1 }], // not a predicate
  ['x + 1', {}, { syntax: 1 }],
  ['x = 1 AND y', {}, { syntax: 11 }],
  ['foo.x = 1', {}, { syntax: 1 }],
  ['x = 1 # 2', {}, { syntax: 7 }],
  ['[x = 1', {}, { syntax: 1 }],
  ['x NOT BETWEEN 1 AND 2', {}, { syntax: 7 }],
  ['EXISTS(1)', {}, { syntax: 8 }],
  ['x = 12abc', {}, { syntax: 7 }],
  ['and = 1', {}, { syntax: 1 }],
  ["x LIKE 'a' ESCAPE", {}, { syntax: 18 }],
  // the topology's own filters
  ...topology.subscriptions.flatMap((s): Row[] => [
    [s.filter, { targetRegion: 'all' }, 'match'],
    [s.filter, { targetRegion: 'us' }, s.filter === usFilter ? 'match' : 'nomatch'],
    [s.filter, { targetRegion: 'eu' }, s.filter === euFilter ? 'match' : 'nomatch'],
    [s.filter, {}, 'nomatch'],
    [s.filter, { targetRegion: 'US' }, 'nomatch'],
    [s.filter, { targetRegion: 1 }, 'eval-error'],
  ]),
];

describe('SqlFilter conformance', () => {
  it('has at least 60 cases and covers the topology filters', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
    expect(new Set(topology.subscriptions.map((s) => s.filter))).toEqual(new Set([usFilter, euFilter]));
  });

  it.each(rows.map((r, i) => [i, ...r] as const))('#%i %s', (_i, expression, props, expected, sys) => {
    const message: FilterMessage = { applicationProperties: props, systemProperties: sys ?? {} };
    if (typeof expected === 'object') {
      let caught: unknown;
      try {
        compileSqlFilter(expression);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SqlFilterSyntaxError);
      const e = caught as SqlFilterSyntaxError;
      expect(e.position).toBe(expected.syntax);
      expect(e.message).toContain(`position ${expected.syntax}`);
      return;
    }
    const filter = compileSqlFilter(expression);
    if (expected === 'eval-error') {
      expect(() => filter.matches(message)).toThrow(SqlFilterEvaluationError);
    } else {
      expect(filter.matches(message)).toBe(expected === 'match');
    }
  });

  it('TrueFilter and FalseFilter', () => {
    expect(TrueFilter.matches({})).toBe(true);
    expect(FalseFilter.matches({})).toBe(false);
    expect(TrueFilter.expression).toBe('1=1');
  });

  it('newid() gives a fresh non-null string', () => {
    expect(compileSqlFilter('newid() <> newid()').matches({})).toBe(true);
  });
});
