/**
 * Values a filter computes with. Integers are `bigint` (Service Bus integer constants are
 * 64-bit longs, C# semantics: truncating division, wrap-around), approximate and decimal
 * numbers are `number` (doubles). `null` is SQL's unknown.
 */
export type SqlValue = null | string | boolean | bigint | number;

export type CompareOp = '=' | '<>' | '!=' | '>' | '>=' | '<' | '<=';
export type ArithOp = '+' | '-' | '*' | '/' | '%';

export interface PropertyRef {
  scope: 'sys' | 'user';
  name: string;
  pos: number;
}

export type Node =
  | { k: 'const'; v: SqlValue; pos: number }
  | ({ k: 'prop' } & PropertyRef)
  | { k: 'func'; name: 'newid' | 'property'; args: Node[]; pos: number }
  | { k: 'neg'; e: Node; pos: number }
  | { k: 'arith'; op: ArithOp; l: Node; r: Node; pos: number }
  | { k: 'cmp'; op: CompareOp; l: Node; r: Node; pos: number }
  | { k: 'and' | 'or'; l: Node; r: Node; pos: number }
  | { k: 'not'; e: Node; pos: number }
  | { k: 'isnull'; prop: PropertyRef; negated: boolean; pos: number }
  | { k: 'in'; e: Node; list: Node[]; negated: boolean; pos: number }
  | { k: 'like'; e: Node; pattern: Node; escape: Node | undefined; negated: boolean; pos: number }
  | { k: 'exists'; prop: PropertyRef; pos: number };

/** Whether a node is a predicate (may stand where the grammar wants `<predicate>`). */
export function isPredicate(n: Node): boolean {
  switch (n.k) {
    case 'cmp':
    case 'and':
    case 'or':
    case 'not':
    case 'isnull':
    case 'in':
    case 'like':
    case 'exists':
      return true;
    case 'const':
      return typeof n.v === 'boolean';
    default:
      return false;
  }
}
