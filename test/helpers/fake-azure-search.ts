/**
 * A stateful local fake of the Azure AI Search data-plane REST API, enough for
 * `AzureSearchIndex`: docs/search.index, docs/search.post.search (keyword + vector + RRF,
 * the OData filter subset the adapter sends), docs/$count. Every request is recorded, and
 * anything unexpected — path, api-version, api-key, content type, body member, filter
 * syntax — is answered 400 and listed in `violations`, so a test fails loudly.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { reciprocalRankFusion } from '../../src/domain/rank-fusion';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

type Doc = Record<string, unknown> & { id: string };
type Value = string | number;
type Pred = (d: Doc) => boolean;

const SEARCH_MEMBERS = new Set([
  'search',
  'searchMode',
  'filter',
  'select',
  'top',
  'orderby',
  'vectorQueries',
  'vectorFilterMode',
  'queryType',
  'semanticConfiguration',
  'count',
]);

/** Parses the OData subset the adapter emits: and, not, parentheses, eq/lt/gt, search.in. */
export function parseFilter(filter: string): Pred {
  const tokens = filter.match(/'(?:[^']|'')*'|search\.in|[A-Za-z_][A-Za-z0-9_]*|-?\d+|[(),]|\S/g) ?? [];
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (expected?: string): string => {
    const t = tokens[i++];
    if (t === undefined || (expected !== undefined && t !== expected))
      throw new Error(`filter: expected ${expected ?? 'a token'} at ${i} in ${filter}`);
    return t;
  };
  const literal = (): Value => {
    const t = take();
    if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
    if (/^-?\d+$/.test(t)) return Number(t);
    throw new Error(`filter: bad literal ${t}`);
  };
  const term = (): Pred => {
    const t = peek();
    if (t === 'not') {
      take();
      const inner = term();
      return (d) => !inner(d);
    }
    if (t === '(') {
      take('(');
      const inner = expr();
      take(')');
      return inner;
    }
    if (t === 'search.in') {
      take();
      take('(');
      const field = take();
      take(',');
      const list = literal();
      take(',');
      const delim = literal();
      take(')');
      const set = new Set(String(list).split(String(delim)));
      return (d) => set.has(String(d[field]));
    }
    const field = take();
    const op = take();
    const value = literal();
    if (op === 'eq') return (d) => d[field] === value;
    if (op === 'lt') return (d) => (d[field] as Value) < value;
    if (op === 'gt') return (d) => (d[field] as Value) > value;
    throw new Error(`filter: unsupported operator ${op}`);
  };
  const expr = (): Pred => {
    let left = term();
    while (peek() === 'and') {
      take();
      const a = left;
      const b = term();
      left = (d) => a(d) && b(d);
    }
    return left;
  };
  const pred = expr();
  if (i !== tokens.length) throw new Error(`filter: trailing input in ${filter}`);
  return pred;
}

const words = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

export class FakeAzureSearch {
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  readonly docs = new Map<string, Doc>();
  private server: Server | undefined;
  endpoint = '';

  constructor(
    readonly indexName: string,
    readonly apiVersion: string,
    readonly apiKey: string,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const rec: RecordedRequest = {
          method: req.method ?? '',
          path: decodeURIComponent(url.pathname),
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body: raw ? (JSON.parse(raw) as unknown) : undefined,
        };
        this.requests.push(rec);
        const send = (status: number, body: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json; odata.metadata=none' });
          res.end(typeof body === 'string' ? body : JSON.stringify(body));
        };
        try {
          send(200, this.handle(rec));
        } catch (err) {
          this.violations.push(`${rec.method} ${rec.path}: ${(err as Error).message}`);
          send(400, { error: { code: 'InvalidRequest', message: (err as Error).message } });
        }
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private handle(r: RecordedRequest): unknown {
    if (r.query['api-version'] !== this.apiVersion) throw new Error(`api-version ${r.query['api-version']}`);
    if (r.headers['api-key'] !== this.apiKey) throw new Error('missing or wrong api-key header');
    if (r.headers['authorization'] !== undefined) throw new Error('unexpected Authorization header with a key credential');
    const prefix = `/indexes('${this.indexName}')/docs`;
    if (!r.path.startsWith(prefix)) throw new Error(`unknown path ${r.path}`);
    const op = r.path.slice(prefix.length);
    if (r.method === 'POST' && !String(r.headers['content-type']).startsWith('application/json'))
      throw new Error('POST without JSON content type');
    if (r.method === 'GET' && op === '/$count') return String(this.docs.size);
    if (r.method === 'POST' && op === '/search.index')
      return this.index(r.body as { value: (Doc & { '@search.action': string })[] });
    if (r.method === 'POST' && op === '/search.post.search') return this.search(r.body as Record<string, unknown>);
    throw new Error(`unknown operation ${r.method} ${op}`);
  }

  private index(body: { value: (Doc & { '@search.action': string })[] }): unknown {
    if (!Array.isArray(body?.value) || Object.keys(body).length !== 1) throw new Error('index body must be {value: [...]}');
    return {
      value: body.value.map((action) => {
        const { '@search.action': kind, ...doc } = action;
        if (!/^[A-Za-z0-9_\-=]+$/.test(doc.id)) throw new Error(`invalid key ${doc.id}`);
        const existed = this.docs.has(doc.id);
        if (kind === 'mergeOrUpload') this.docs.set(doc.id, { ...(this.docs.get(doc.id) ?? {}), ...doc } as Doc);
        else if (kind === 'delete') this.docs.delete(doc.id);
        else throw new Error(`unexpected action ${kind}`);
        return { key: doc.id, status: true, errorMessage: null, statusCode: existed || kind === 'delete' ? 200 : 201 };
      }),
    };
  }

  private search(body: Record<string, unknown>): unknown {
    for (const k of Object.keys(body)) if (!SEARCH_MEMBERS.has(k)) throw new Error(`unexpected search member ${k}`);
    const filter = typeof body['filter'] === 'string' ? parseFilter(body['filter']) : () => true;
    const pool = [...this.docs.values()].filter(filter);
    const top = typeof body['top'] === 'number' ? body['top'] : 50;
    const search = typeof body['search'] === 'string' ? body['search'] : undefined;
    const lists: string[][] = [];
    const scores = new Map<string, number>();
    if (search === '*' || (search === undefined && !body['vectorQueries'])) {
      lists.push(pool.map((d) => d.id));
    } else if (search !== undefined) {
      if (body['searchMode'] !== 'any') throw new Error('text queries must use searchMode any');
      const terms = [...new Set(words(search))];
      const text = new Map(
        pool.map((d) => [d.id, words(`${String(d['content'])} ${String(d['headingPath'])} ${String(d['name'])}`)]),
      );
      const df = new Map(terms.map((t) => [t, pool.filter((d) => text.get(d.id)?.includes(t)).length]));
      const scored = pool
        .map((d) => {
          const w = text.get(d.id) ?? [];
          const s = terms.reduce((acc, t) => {
            const tf = w.filter((x) => x === t).length;
            return tf ? acc + (1 + Math.log(tf)) * Math.log(1 + pool.length / (df.get(t) ?? 1)) : acc;
          }, 0);
          return { id: d.id, s };
        })
        .filter((x) => x.s > 0)
        .sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1))
        .slice(0, 50);
      for (const x of scored) scores.set(x.id, x.s);
      lists.push(scored.map((x) => x.id));
    }
    for (const q of (body['vectorQueries'] as { kind: string; vector: number[]; k: number; fields: string }[] | undefined) ??
      []) {
      if (q.kind !== 'vector' || q.fields !== 'contentVector' || !Array.isArray(q.vector) || typeof q.k !== 'number')
        throw new Error('bad vector query');
      if (body['vectorFilterMode'] !== 'preFilter') throw new Error('vector queries must pre-filter');
      const ranked = pool
        .map((d) => ({ id: d.id, s: (d['contentVector'] as number[]).reduce((acc, x, i) => acc + x * (q.vector[i] ?? 0), 0) }))
        .sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1))
        .slice(0, q.k);
      for (const x of ranked) scores.set(x.id, x.s);
      lists.push(ranked.map((x) => x.id));
    }
    let ranked: { id: string; score: number }[];
    if (lists.length > 1) ranked = reciprocalRankFusion(lists);
    else ranked = (lists[0] ?? []).map((id) => ({ id, score: scores.get(id) ?? 1 }));
    if (body['orderby'] === 'id asc') ranked.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    else if (body['orderby'] !== undefined) throw new Error(`unsupported orderby ${String(body['orderby'])}`);
    const select = typeof body['select'] === 'string' ? body['select'].split(',') : undefined;
    return {
      value: ranked.slice(0, top).map(({ id, score }) => {
        const d = this.docs.get(id) as Doc;
        const fields = Object.fromEntries(
          Object.entries(d).filter(([k]) => k !== 'contentVector' && (!select || select.includes(k))),
        );
        return { '@search.score': score, ...fields };
      }),
    };
  }
}
