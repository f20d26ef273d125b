/** A filter expression that does not parse. `position` is 1-based, in characters. */
export class SqlFilterSyntaxError extends Error {
  override readonly name = 'SqlFilterSyntaxError';
  /** 1-based character position of the offending token in the expression. */
  readonly position: number;
  /** The message without the position suffix. */
  readonly reason: string;

  constructor(reason: string, position: number) {
    super(`${reason} at position ${position}`);
    this.reason = reason;
    this.position = position;
  }
}

/**
 * A filter that parsed but cannot be evaluated against a message (type mismatch, integer
 * division by zero, unknown system property). Service Bus dead-letters the message into
 * the subscription when `deadLetteringOnFilterEvaluationExceptions` is on.
 */
export class SqlFilterEvaluationError extends Error {
  override readonly name = 'SqlFilterEvaluationError';
}
