/**
 * Service Bus subscription-rule SQL filters: parse once (rejecting a bad filter with the
 * position of the error), evaluate against each message with SQL three-valued logic. A
 * filter matches only when it evaluates to TRUE; unknown (NULL) does not match.
 */
import type { Node } from './ast';
import { evaluate, type FilterMessage } from './evaluator';
import { parseSqlFilter } from './parser';

export type { FilterMessage, FilterPropertyValue } from './evaluator';
export { SYSTEM_PROPERTIES } from './evaluator';
export type { SqlValue } from './ast';
export { SqlFilterEvaluationError, SqlFilterSyntaxError } from './errors';
export { parseSqlFilter } from './parser';

export interface SqlFilter {
  /** The expression as given. */
  readonly expression: string;
  /**
   * Whether the message matches (the expression is TRUE, not FALSE or unknown).
   * @throws SqlFilterEvaluationError on a type mismatch, integer division by zero or an
   *   unknown system property.
   */
  matches(message: FilterMessage): boolean;
}

class CompiledSqlFilter implements SqlFilter {
  constructor(
    readonly expression: string,
    private readonly ast: Node,
  ) {}

  matches(message: FilterMessage): boolean {
    return evaluate(this.ast, message) === true;
  }
}

/**
 * Compiles a filter expression.
 * @throws SqlFilterSyntaxError (with `position`, 1-based) when it does not parse.
 */
export function compileSqlFilter(expression: string): SqlFilter {
  return new CompiledSqlFilter(expression, parseSqlFilter(expression));
}

/** Service Bus's TrueFilter (`1=1`): every message matches. */
export const TrueFilter: SqlFilter = compileSqlFilter('1=1');
/** Service Bus's FalseFilter (`1=0`): no message matches. */
export const FalseFilter: SqlFilter = compileSqlFilter('1=0');
