import type { Node, PropertyRef, SqlValue } from './ast';
import { SqlFilterEvaluationError } from './errors';

/** Values a message property may hold when a filter reads it. */
export type FilterPropertyValue = string | number | boolean | bigint | null | Date;

/** What a filter sees of a message. */
export interface FilterMessage {
  /** User properties, matched by exact name. */
  applicationProperties?: Readonly<Record<string, FilterPropertyValue | undefined>>;
  /**
   * System properties by name (matched case-insensitively, `Label` and `Subject` are the
   * same). A known system property that the message lacks reads as NULL.
   */
  systemProperties?: Readonly<Record<string, FilterPropertyValue | undefined>>;
}

/** The system properties a filter may name (lower-case); any other `sys.` name is an error. */
export const SYSTEM_PROPERTIES: ReadonlySet<string> = new Set([
  'messageid',
  'correlationid',
  'to',
  'replyto',
  'label',
  'subject',
  'contenttype',
  'sessionid',
  'replytosessionid',
  'partitionkey',
  'timetolive',
  'scheduledenqueuetimeutc',
  'enqueuedtimeutc',
  'expiresatutc',
  'sequencenumber',
  'enqueuedsequencenumber',
  'deliverycount',
  'size',
  'lockeduntilutc',
  'locktoken',
  'deadlettersource',
]);

type Bool3 = boolean | null;

const typeName = (v: SqlValue): string =>
  v === null ? 'null' : typeof v === 'bigint' ? 'integer' : typeof v === 'number' ? 'double' : typeof v;

function fail(message: string): never {
  throw new SqlFilterEvaluationError(message);
}

function toSqlValue(v: FilterPropertyValue | undefined): SqlValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (v instanceof Date) return v.toISOString();
  return v;
}

function readProperty(ref: PropertyRef, msg: FilterMessage): SqlValue {
  if (ref.scope === 'user') return toSqlValue(msg.applicationProperties?.[ref.name]);
  const key = ref.name.toLowerCase();
  if (!SYSTEM_PROPERTIES.has(key)) fail(`unknown system property sys.${ref.name}`);
  const sys = msg.systemProperties ?? {};
  for (const [name, value] of Object.entries(sys)) {
    const k = name.toLowerCase();
    if (k === key || (key === 'label' && k === 'subject') || (key === 'subject' && k === 'label')) {
      return toSqlValue(value);
    }
  }
  return null;
}

function propertyExists(ref: PropertyRef, msg: FilterMessage): boolean {
  if (ref.scope === 'user') {
    const props = msg.applicationProperties;
    return props !== undefined && Object.prototype.hasOwnProperty.call(props, ref.name) && props[ref.name] !== undefined;
  }
  return readProperty(ref, msg) !== null;
}

const isNum = (v: SqlValue): v is bigint | number => typeof v === 'bigint' || typeof v === 'number';

/** C#-style numeric comparison with promotion of long to double when mixed. */
function numCompare(a: bigint | number, b: bigint | number): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.NaN;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `=` between two known values; throws on incomparable types (C# operator binding). */
function equals(a: SqlValue, b: SqlValue): Bool3 {
  if (a === null || b === null) return null;
  if (isNum(a) && isNum(b)) return numCompare(a, b) === 0;
  if (typeof a === typeof b) return a === b;
  return fail(`cannot compare ${typeName(a)} with ${typeName(b)}`);
}

function compare(op: string, a: SqlValue, b: SqlValue): Bool3 {
  if (a === null || b === null) return null;
  if (op === '=') return equals(a, b);
  if (op === '<>' || op === '!=') {
    const eq = equals(a, b);
    return eq === null ? null : !eq;
  }
  if (!isNum(a) || !isNum(b)) fail(`operator ${op} needs numbers, got ${typeName(a)} and ${typeName(b)}`);
  const c = numCompare(a, b);
  if (Number.isNaN(c)) return false;
  switch (op) {
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '<':
      return c < 0;
    default:
      return c <= 0;
  }
}

function arith(op: string, a: SqlValue, b: SqlValue): SqlValue {
  if (a === null || b === null) return null;
  if (op === '+' && (typeof a === 'string' || typeof b === 'string')) {
    if (typeof a === 'boolean' || typeof b === 'boolean') fail('cannot add a boolean to a string');
    return `${a}${b}`; // C# string concatenation
  }
  if (!isNum(a) || !isNum(b)) fail(`operator ${op} needs numbers, got ${typeName(a)} and ${typeName(b)}`);
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    switch (op) {
      case '+':
        return BigInt.asIntN(64, a + b);
      case '-':
        return BigInt.asIntN(64, a - b);
      case '*':
        return BigInt.asIntN(64, a * b);
      case '/':
        if (b === 0n) fail('integer division by zero');
        return BigInt.asIntN(64, a / b);
      default:
        if (b === 0n) fail('integer division by zero');
        return a % b;
    }
  }
  const x = Number(a);
  const y = Number(b);
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return x / y;
    default:
      return x % y;
  }
}

function likeToRegExp(pattern: string, escape: string | undefined): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (escape !== undefined && c === escape) {
      const next = pattern[i + 1];
      if (next === undefined) fail('LIKE pattern ends with the escape character');
      re += next.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      i++;
    } else if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 'su');
}

function asBool(v: SqlValue, what: string): Bool3 {
  if (v === null || typeof v === 'boolean') return v;
  return fail(`${what} needs a boolean, got ${typeName(v)}`);
}

/** Evaluates a parsed expression to a value (predicates give true/false/null = unknown). */
export function evaluate(n: Node, msg: FilterMessage): SqlValue {
  switch (n.k) {
    case 'const':
      return n.v;
    case 'prop':
      return readProperty(n, msg);
    case 'func': {
      if (n.name === 'newid') return globalThis.crypto.randomUUID();
      const name = evaluate(n.args[0] as Node, msg);
      if (name === null) return null;
      if (typeof name !== 'string') fail('property() needs a string name');
      const dot = name.indexOf('.');
      const scope = dot > 0 ? name.slice(0, dot).toLowerCase() : '';
      if (scope === 'sys' || scope === 'user') return readProperty({ scope, name: name.slice(dot + 1), pos: n.pos }, msg);
      return readProperty({ scope: 'user', name, pos: n.pos }, msg);
    }
    case 'neg': {
      const v = evaluate(n.e, msg);
      if (v === null) return null;
      if (typeof v === 'bigint') return BigInt.asIntN(64, -v);
      if (typeof v === 'number') return -v;
      return fail(`unary - needs a number, got ${typeName(v)}`);
    }
    case 'arith':
      return arith(n.op, evaluate(n.l, msg), evaluate(n.r, msg));
    case 'cmp':
      return compare(n.op, evaluate(n.l, msg), evaluate(n.r, msg));
    case 'and': {
      const l = asBool(evaluate(n.l, msg), 'AND');
      if (l === false) return false;
      const r = asBool(evaluate(n.r, msg), 'AND');
      if (r === false) return false;
      return l === null || r === null ? null : true;
    }
    case 'or': {
      const l = asBool(evaluate(n.l, msg), 'OR');
      if (l === true) return true;
      const r = asBool(evaluate(n.r, msg), 'OR');
      if (r === true) return true;
      return l === null || r === null ? null : false;
    }
    case 'not': {
      const v = asBool(evaluate(n.e, msg), 'NOT');
      return v === null ? null : !v;
    }
    case 'isnull': {
      const isNull = readProperty(n.prop, msg) === null;
      return n.negated ? !isNull : isNull;
    }
    case 'exists':
      return propertyExists(n.prop, msg);
    case 'in': {
      const v = evaluate(n.e, msg);
      if (v === null) return null;
      let sawUnknown = false;
      for (const item of n.list) {
        const eq = equals(v, evaluate(item, msg));
        if (eq === true) return !n.negated;
        if (eq === null) sawUnknown = true;
      }
      return sawUnknown ? null : n.negated;
    }
    case 'like': {
      const v = evaluate(n.e, msg);
      if (v === null) return null;
      if (typeof v !== 'string') fail(`LIKE needs a string, got ${typeName(v)}`);
      const pattern = evaluate(n.pattern, msg);
      if (pattern === null) return null;
      if (typeof pattern !== 'string') fail(`LIKE pattern must be a string, got ${typeName(pattern)}`);
      let escape: string | undefined;
      if (n.escape) {
        const e = evaluate(n.escape, msg);
        if (typeof e !== 'string' || [...e].length !== 1) fail('ESCAPE must be a string of length 1');
        escape = e;
      }
      const m = likeToRegExp(pattern, escape).test(v);
      return n.negated ? !m : m;
    }
  }
}
