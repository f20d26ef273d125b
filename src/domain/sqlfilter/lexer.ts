import { SqlFilterSyntaxError } from './errors';

export type TokenKind =
  | 'ident' // bare identifier or keyword (keywords are told apart by the parser, case-insensitively)
  | 'qident' // [bracketed identifier]
  | 'string'
  | 'int'
  | 'decimal'
  | 'float'
  | 'op' // = <> != > >= < <= + - * / % ( ) , .
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** Identifier name, string value (quotes resolved) or operator text. */
  text: string;
  /** 1-based character position of the token's first character. */
  pos: number;
}

const isIdentStart = (c: string): boolean => /[A-Za-z_]/.test(c);
const isIdentPart = (c: string): boolean => /[A-Za-z0-9_]/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/** Splits a filter expression into tokens; throws `SqlFilterSyntaxError` with the position. */
export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i + 1;
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(src[j] as string)) j++;
      tokens.push({ kind: 'ident', text: src.slice(i, j), pos });
      i = j;
      continue;
    }
    if (c === '[') {
      // Delimited identifier; `]]` stands for one `]`.
      let j = i + 1;
      let name = '';
      for (;;) {
        if (j >= n) throw new SqlFilterSyntaxError('unterminated [identifier]', pos);
        const d = src[j] as string;
        if (d === ']') {
          if (src[j + 1] === ']') {
            name += ']';
            j += 2;
            continue;
          }
          j++;
          break;
        }
        name += d;
        j++;
      }
      if (name.length === 0) throw new SqlFilterSyntaxError('empty [identifier]', pos);
      tokens.push({ kind: 'qident', text: name, pos });
      i = j;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= n) throw new SqlFilterSyntaxError('unterminated string literal', pos);
        const d = src[j] as string;
        if (d === "'") {
          if (src[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          j++;
          break;
        }
        value += d;
        j++;
      }
      tokens.push({ kind: 'string', text: value, pos });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(src[i + 1] ?? ''))) {
      let j = i;
      let kind: TokenKind = 'int';
      while (j < n && isDigit(src[j] as string)) j++;
      if (src[j] === '.') {
        kind = 'decimal';
        j++;
        while (j < n && isDigit(src[j] as string)) j++;
      }
      if (src[j] === 'e' || src[j] === 'E') {
        let k = j + 1;
        if (src[k] === '+' || src[k] === '-') k++;
        if (!isDigit(src[k] ?? '')) throw new SqlFilterSyntaxError('malformed exponent in number', pos);
        while (k < n && isDigit(src[k] as string)) k++;
        kind = 'float';
        j = k;
      }
      if (j < n && isIdentStart(src[j] as string)) {
        throw new SqlFilterSyntaxError(`unexpected character '${src[j] as string}' after number`, j + 1);
      }
      tokens.push({ kind, text: src.slice(i, j), pos });
      i = j;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '<>' || two === '!=' || two === '>=' || two === '<=') {
      tokens.push({ kind: 'op', text: two, pos });
      i += 2;
      continue;
    }
    if ('=<>+-*/%(),.'.includes(c)) {
      tokens.push({ kind: 'op', text: c, pos });
      i++;
      continue;
    }
    throw new SqlFilterSyntaxError(`unexpected character '${c}'`, pos);
  }
  tokens.push({ kind: 'eof', text: '', pos: n + 1 });
  return tokens;
}
