import { type ArithOp, type CompareOp, isPredicate, type Node, type PropertyRef } from './ast';
import { SqlFilterSyntaxError } from './errors';
import { type Token, tokenize } from './lexer';

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'like', 'escape', 'is', 'null', 'exists', 'true', 'false']);
const COMPARE_OPS = new Set(['=', '<>', '!=', '>', '>=', '<', '<=']);

/**
 * Parses a Service Bus SQL filter expression ("Subscription Rule SQL Filter Syntax") into
 * an AST. Keywords are case-insensitive; a missing scope means `user`.
 * @throws SqlFilterSyntaxError with the 1-based position of the first bad token.
 */
export function parseSqlFilter(src: string): Node {
  const p = new Parser(tokenize(src));
  if (p.peek().kind === 'eof') throw new SqlFilterSyntaxError('empty filter expression', 1);
  const node = p.predicate();
  p.expectEof();
  return node;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(offset = 0): Token {
    return (this.tokens[this.i + offset] ?? this.tokens[this.tokens.length - 1]) as Token;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  private isKw(word: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'ident' && t.text.toLowerCase() === word;
  }
  private isOp(op: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.text === op;
  }
  private fail(what: string, t: Token = this.peek()): never {
    const found = t.kind === 'eof' ? 'end of expression' : `'${t.kind === 'string' ? `'${t.text}'` : t.text}'`;
    throw new SqlFilterSyntaxError(`expected ${what} but found ${found}`, t.pos);
  }
  private expectOp(op: string): Token {
    if (!this.isOp(op)) this.fail(`'${op}'`);
    return this.next();
  }
  private expectKw(word: string): Token {
    if (!this.isKw(word)) this.fail(word.toUpperCase());
    return this.next();
  }
  expectEof(): void {
    if (this.peek().kind !== 'eof') this.fail('AND, OR or the end of the expression');
  }

  /** A predicate where the grammar wants one (operand of AND/OR/NOT, the whole filter). */
  predicate(): Node {
    const start = this.peek();
    const n = this.orExpr();
    if (!isPredicate(n)) {
      throw new SqlFilterSyntaxError('expected a predicate (comparison, IN, LIKE, IS NULL, EXISTS)', start.pos);
    }
    return n;
  }

  private orExpr(): Node {
    let l = this.andExpr();
    while (this.isKw('or')) {
      const t = this.next();
      const r = this.andExpr();
      this.requirePredicate(l, t);
      this.requirePredicate(r, t);
      l = { k: 'or', l, r, pos: t.pos };
    }
    return l;
  }

  private andExpr(): Node {
    let l = this.notExpr();
    while (this.isKw('and')) {
      const t = this.next();
      const r = this.notExpr();
      this.requirePredicate(l, t);
      this.requirePredicate(r, t);
      l = { k: 'and', l, r, pos: t.pos };
    }
    return l;
  }

  private requirePredicate(n: Node, op: Token): void {
    if (!isPredicate(n)) {
      throw new SqlFilterSyntaxError(`operands of ${op.text.toUpperCase()} must be predicates`, n.pos);
    }
  }

  private notExpr(): Node {
    if (this.isKw('not')) {
      const t = this.next();
      const e = this.notExpr();
      if (!isPredicate(e)) throw new SqlFilterSyntaxError('NOT must be followed by a predicate', e.pos);
      return { k: 'not', e, pos: t.pos };
    }
    return this.comparison();
  }

  private comparison(): Node {
    if (this.isKw('exists')) {
      const t = this.next();
      this.expectOp('(');
      const prop = this.property();
      this.expectOp(')');
      return { k: 'exists', prop, pos: t.pos };
    }
    const l = this.additive();
    const t = this.peek();
    if (t.kind === 'op' && COMPARE_OPS.has(t.text)) {
      this.next();
      const r = this.additive();
      return { k: 'cmp', op: t.text as CompareOp, l, r, pos: t.pos };
    }
    if (this.isKw('is')) {
      this.next();
      if (l.k !== 'prop') throw new SqlFilterSyntaxError('IS [NOT] NULL applies to a property only', l.pos);
      const negated = this.isKw('not');
      if (negated) this.next();
      this.expectKw('null');
      return { k: 'isnull', prop: { scope: l.scope, name: l.name, pos: l.pos }, negated, pos: t.pos };
    }
    let negated = false;
    if (this.isKw('not')) {
      this.next();
      negated = true;
    }
    if (this.isKw('in')) {
      const inTok = this.next();
      this.expectOp('(');
      const list: Node[] = [this.additive()];
      while (this.isOp(',')) {
        this.next();
        list.push(this.additive());
      }
      this.expectOp(')');
      return { k: 'in', e: l, list, negated, pos: inTok.pos };
    }
    if (this.isKw('like')) {
      const likeTok = this.next();
      const pattern = this.additive();
      let escape: Node | undefined;
      if (this.isKw('escape')) {
        this.next();
        escape = this.additive();
      }
      return { k: 'like', e: l, pattern, escape, negated, pos: likeTok.pos };
    }
    if (negated) this.fail('IN or LIKE');
    return l;
  }

  private additive(): Node {
    let l = this.multiplicative();
    for (;;) {
      const t = this.peek();
      if (t.kind === 'op' && (t.text === '+' || t.text === '-')) {
        this.next();
        const r = this.multiplicative();
        l = { k: 'arith', op: t.text as ArithOp, l, r, pos: t.pos };
      } else return l;
    }
  }

  private multiplicative(): Node {
    let l = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.kind === 'op' && (t.text === '*' || t.text === '/' || t.text === '%')) {
        this.next();
        const r = this.unary();
        l = { k: 'arith', op: t.text as ArithOp, l, r, pos: t.pos };
      } else return l;
    }
  }

  private unary(): Node {
    const t = this.peek();
    if (t.kind === 'op' && (t.text === '-' || t.text === '+')) {
      this.next();
      const e = this.unary();
      if (t.text === '+') return e;
      // Fold `-<literal>` so that -9223372036854775808 and friends stay exact.
      if (e.k === 'const' && (typeof e.v === 'bigint' || typeof e.v === 'number')) {
        return { k: 'const', v: typeof e.v === 'bigint' ? BigInt.asIntN(64, -e.v) : -e.v, pos: t.pos };
      }
      return { k: 'neg', e, pos: t.pos };
    }
    return this.primary();
  }

  private primary(): Node {
    const t = this.peek();
    switch (t.kind) {
      case 'string':
        this.next();
        return { k: 'const', v: t.text, pos: t.pos };
      case 'int': {
        this.next();
        const v = BigInt(t.text);
        if (v > 9223372036854775808n) throw new SqlFilterSyntaxError('integer constant out of range', t.pos);
        return { k: 'const', v: BigInt.asIntN(64, v), pos: t.pos };
      }
      case 'decimal':
      case 'float':
        this.next();
        return { k: 'const', v: Number(t.text), pos: t.pos };
      case 'op':
        if (t.text === '(') {
          this.next();
          const e = this.orExpr();
          this.expectOp(')');
          return e;
        }
        return this.fail('an expression', t);
      case 'ident': {
        const word = t.text.toLowerCase();
        if (word === 'true' || word === 'false') {
          this.next();
          return { k: 'const', v: word === 'true', pos: t.pos };
        }
        if (word === 'null') {
          this.next();
          return { k: 'const', v: null, pos: t.pos };
        }
        const after = this.peek(1);
        if (after.kind === 'op' && after.text === '(' && (word === 'newid' || word === 'property')) {
          this.next();
          this.next();
          const args: Node[] = [];
          if (!this.isOp(')')) {
            args.push(this.additive());
            while (this.isOp(',')) {
              this.next();
              args.push(this.additive());
            }
          }
          this.expectOp(')');
          const want = word === 'newid' ? 0 : 1;
          if (args.length !== want) {
            throw new SqlFilterSyntaxError(`${word}() takes ${want} argument${want === 1 ? '' : 's'}`, t.pos);
          }
          return { k: 'func', name: word, args, pos: t.pos };
        }
        return { k: 'prop', ...this.property() };
      }
      case 'qident':
        return { k: 'prop', ...this.property() };
      default:
        return this.fail('an expression', t);
    }
  }

  private property(): PropertyRef {
    const first = this.peek();
    if (first.kind !== 'ident' && first.kind !== 'qident') return this.fail('a property name');
    if (first.kind === 'ident' && KEYWORDS.has(first.text.toLowerCase())) {
      return this.fail('a property name (write [name] to use a keyword as one)');
    }
    this.next();
    if (this.isOp('.')) {
      const scope = first.text.toLowerCase();
      if (first.kind !== 'ident' || (scope !== 'sys' && scope !== 'user')) {
        throw new SqlFilterSyntaxError(`unknown scope '${first.text}' (use sys. or user.)`, first.pos);
      }
      this.next();
      const name = this.peek();
      if (name.kind !== 'ident' && name.kind !== 'qident') return this.fail('a property name after the scope');
      this.next();
      return { scope, name: name.text, pos: first.pos };
    }
    return { scope: 'user', name: first.text, pos: first.pos };
  }
}
