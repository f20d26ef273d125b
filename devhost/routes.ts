/**
 * HTTP route templates as the Functions host understands them (ASP.NET-style):
 * `documents/{documentId}`, optional `{id?}`, catch-all `{*path}`, constraints `{id:int}`,
 * `{id:guid}`, `{flag:bool}`, `{name:alpha}`, `{n:length(3)}`, `{n:minlength(2)}`, `{n:maxlength(9)}`.
 * Literal segments match case-insensitively; more specific routes win over less specific ones.
 */

type Segment =
  | { kind: 'literal'; text: string }
  | { kind: 'param'; name: string; optional: boolean; catchAll: boolean; constraints: Constraint[] };

type Constraint = (value: string) => boolean;

export interface CompiledRoute<T> {
  template: string;
  segments: Segment[];
  methods: Set<string>;
  target: T;
  /** Sort key: lower is tried first. */
  rank: number[];
}

export type RouteMatch<T> =
  | { kind: 'match'; target: T; params: Record<string, string>; route: CompiledRoute<T> }
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'not_found' };

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseConstraint(spec: string, template: string): Constraint {
  const m = /^([a-z]+)(?:\((.*)\))?$/i.exec(spec);
  if (!m) throw new Error(`Route ${template}: bad constraint "${spec}"`);
  const name = (m[1] ?? '').toLowerCase();
  const arg = m[2];
  const n = arg === undefined ? NaN : Number(arg);
  switch (name) {
    case 'int':
    case 'long':
      return (v) => /^-?\d+$/.test(v);
    case 'guid':
      return (v) => GUID.test(v);
    case 'bool':
      return (v) => /^(true|false)$/i.test(v);
    case 'alpha':
      return (v) => /^[a-z]+$/i.test(v);
    case 'length':
      return (v) => v.length === n;
    case 'minlength':
      return (v) => v.length >= n;
    case 'maxlength':
      return (v) => v.length <= n;
    default:
      throw new Error(`Route ${template}: unsupported constraint "${spec}"`);
  }
}

export function compileRoute<T>(template: string, methods: readonly string[], target: T): CompiledRoute<T> {
  const clean = template.replace(/^\/+|\/+$/g, '');
  const parts = clean === '' ? [] : clean.split('/');
  const segments: Segment[] = parts.map((part, i) => {
    const pm = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(\?)?((?::[^:}]+)*)\}$/.exec(part);
    if (!pm) {
      if (/[{}]/.test(part)) throw new Error(`Route ${template}: unsupported segment "${part}"`);
      return { kind: 'literal', text: part.toLowerCase() };
    }
    const catchAll = pm[1] === '*';
    const optional = pm[3] === '?' || catchAll;
    if (catchAll && i !== parts.length - 1) throw new Error(`Route ${template}: a catch-all must be last`);
    const constraints = (pm[4] ?? '')
      .split(':')
      .filter(Boolean)
      .map((c) => parseConstraint(c, template));
    return { kind: 'param', name: pm[2] as string, optional, catchAll, constraints };
  });
  let seenOptional = false;
  for (const s of segments) {
    if (s.kind === 'param' && s.optional) seenOptional = true;
    else if (seenOptional) throw new Error(`Route ${template}: only trailing parameters may be optional`);
  }
  // Precedence: per segment literal (0) < constrained param (1) < param (2) < optional (3) < catch-all (4).
  const rank = segments.map((s) => {
    if (s.kind === 'literal') return 0;
    if (s.catchAll) return 4;
    if (s.optional) return 3;
    return s.constraints.length ? 1 : 2;
  });
  return { template, segments, methods: new Set(methods.map((m) => m.toUpperCase())), target, rank };
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x !== y) return x - y;
  }
  return 0;
}

function matchSegments<T>(route: CompiledRoute<T>, parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  const segs = route.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as Segment;
    const part = parts[i];
    if (seg.kind === 'literal') {
      if (part === undefined || part.toLowerCase() !== seg.text) return undefined;
      continue;
    }
    if (seg.catchAll) {
      const rest = parts.slice(i).join('/');
      if (rest !== '') params[seg.name] = rest;
      return seg.constraints.every((c) => rest === '' || c(rest)) ? params : undefined;
    }
    if (part === undefined || part === '') {
      if (!seg.optional) return undefined;
      continue;
    }
    if (!seg.constraints.every((c) => c(part))) return undefined;
    params[seg.name] = part;
  }
  return parts.length <= segs.length ? params : undefined;
}

export class Router<T> {
  readonly routes: CompiledRoute<T>[] = [];

  add(template: string, methods: readonly string[], target: T): void {
    this.routes.push(compileRoute(template, methods, target));
    this.routes.sort((a, b) => compareRank(a.rank, b.rank));
  }

  /** Matches a path below the route prefix (no leading slash needed, no query). */
  match(method: string, routePath: string): RouteMatch<T> {
    let parts: string[];
    try {
      parts = routePath
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .filter((p, _i, all) => !(p === '' && all.length === 1))
        .map((p) => decodeURIComponent(p));
    } catch {
      return { kind: 'not_found' };
    }
    const upper = method.toUpperCase();
    const allow = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route, parts);
      if (!params) continue;
      if (route.methods.has(upper) || (upper === 'HEAD' && route.methods.has('GET'))) {
        return { kind: 'match', target: route.target, params, route };
      }
      route.methods.forEach((m) => allow.add(m));
    }
    return allow.size ? { kind: 'method_not_allowed', allow: [...allow].sort() } : { kind: 'not_found' };
  }
}
