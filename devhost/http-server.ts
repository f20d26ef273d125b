/**
 * Serves the app's HTTP triggers on loopback the way the Functions host does. With
 * `app.setup({ enableHttpStream: true })` the library runs an HTTP server inside the worker
 * and reports it as capability `HttpUri`; the host then forwards the client's request there
 * with `x-ms-invocation-id` and invokes the function with the same id, and the library
 * writes the handler's response (streamed) onto the forwarded response. Without streaming,
 * the response comes back through the invocation (RpcHttpData).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FunctionHost, FunctionInfo } from './host';
import type { RpcHttpData, RpcTypedData } from './functions-core';
import { Router } from './routes';

export type ExtraHandler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface HttpServerOptions {
  host: FunctionHost;
  routePrefix: string;
  maxBodyBytes: number;
  /** Stamped as `x-meridian-region` on responses devhost itself produces. */
  region: string;
  port?: number;
  bindAddress?: string;
  /** Non-function routes (durable webhooks, /_devhost/...): return true when handled. */
  extraHandlers?: ExtraHandler[];
}

export interface RunningHttpServer {
  port: number;
  url: string;
  server: http.Server;
  router: Router<FunctionInfo>;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function requestIdOf(req: http.IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export function sendProblem(
  res: http.ServerResponse,
  status: number,
  code: string,
  title: string,
  detail: string,
  headers: Record<string, string> = {},
  extensions: Record<string, unknown> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ type: `https://meridian.dev/problems/${code}`, title, status, detail, code, ...extensions });
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/**
 * Reads a request body up to `limit` bytes; 'too_large' when it declares or sends more. Then
 * the rest is read and dropped in the background (`discardRest`), so the caller's 413 reaches
 * the client instead of a connection reset; the caller must not add `connection: close`.
 */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) {
    discardRest(req, discardBudget(limit, 0));
    return Promise.resolve('too_large');
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      settle();
      discardRest(req, discardBudget(limit, size));
      resolve('too_large');
    };
    const onEnd = (): void => {
      settle();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      settle();
      reject(err);
    };
    const onClose = (): void => {
      settle();
      reject(new Error('The client closed the connection before the body ended.'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/** How long `discardRest` keeps reading after an early answer before it resets the connection. */
const DISCARD_MS = 5_000;

/** What is left to drop of a body over `limit` after `read` bytes: up to twice the limit (1 MiB at least) in all. */
function discardBudget(limit: number, read: number): number {
  return Math.max(2 * limit, 1024 * 1024) - read;
}

/**
 * Reads and drops what is left of a request body that will not be used (413). Closing a
 * socket with unread input makes the kernel send a reset, and a peer that is still writing
 * (a proxy piping the body) then gets EPIPE/ECONNRESET and may lose the answer it has not
 * read yet. A body that ends within `maxBytes` leaves the connection reusable; past that the
 * connection is half-closed (FIN after the answer) and read on until the peer closes, a
 * lingering close; it is reset only after `DISCARD_MS`.
 */
export function discardRest(req: http.IncomingMessage, maxBytes: number): void {
  if (req.complete || req.destroyed) return;
  const socket = req.socket;
  let seen = 0;
  let lingering = false;
  const timer = setTimeout(() => socket.destroy(), DISCARD_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes && !lingering) {
      lingering = true;
      socket.end();
    }
  });
  for (const done of ['end', 'close', 'error']) req.once(done, () => clearTimeout(timer));
  req.resume();
}

function headersOf(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** One HTTP trigger invocation on the streaming path. */
interface StreamCall {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  fn: FunctionInfo;
  body: Buffer;
  headers: Record<string, string>;
  url: URL;
  invocation: Parameters<FunctionHost['invoke']>[1];
  /** Headers devhost stamps on every response (request id, region). */
  base: Record<string, string>;
}

/** The headers the host adds when it forwards a request to the worker's proxy. */
function forwardedHeaders(call: StreamCall, invocationId: string): Record<string, string> {
  return {
    ...call.headers,
    'content-length': String(call.body.length),
    'x-ms-invocation-id': invocationId,
    'x-forwarded-host': call.req.headers.host ?? '127.0.0.1',
    'x-forwarded-proto': 'http',
  };
}

export function httpTriggerRoutes(host: FunctionHost): Router<FunctionInfo> {
  const router = new Router<FunctionInfo>();
  for (const fn of host.functions()) {
    if (fn.trigger.type !== 'httpTrigger') continue;
    const route = typeof fn.trigger['route'] === 'string' ? (fn.trigger['route'] as string) : fn.name;
    const methods = Array.isArray(fn.trigger['methods']) ? (fn.trigger['methods'] as string[]) : ['GET', 'POST'];
    router.add(route, methods, fn);
  }
  return router;
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, maxBodyBytes, region } = options;
  const prefix = options.routePrefix.replace(/^\/+|\/+$/g, '');
  const router = httpTriggerRoutes(host);
  // The library reports http://localhost:<port>/ and listens on every interface: resolve it
  // once, or each forwarded request pays a DNS lookup on libuv's small thread pool.
  const streamUri = host.capabilities['HttpUri']?.replace('//localhost:', '//127.0.0.1:');
  const workerAgent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      host.log('error', 'system', `devhost http failure: ${(err as Error)?.stack ?? String(err)}`);
      sendProblem(res, 500, 'internal', 'Internal Server Error', 'The host failed to process the request.', {
        'x-request-id': requestIdOf(req),
        'x-meridian-region': region,
      });
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    for (const extra of options.extraHandlers ?? []) {
      if (await extra(req, res, url)) return;
    }
    const requestId = requestIdOf(req);
    const base = { 'x-request-id': requestId, 'x-meridian-region': region };
    const pathname = url.pathname;
    const prefixPath = prefix ? `/${prefix}` : '';
    if (prefix && !(pathname === prefixPath || pathname.startsWith(`${prefixPath}/`))) {
      sendProblem(res, 404, 'not_found', 'Not Found', `No route for ${pathname}.`, base);
      return;
    }
    const found = router.match(req.method ?? 'GET', pathname.slice(prefixPath.length));
    if (found.kind === 'not_found') {
      sendProblem(res, 404, 'not_found', 'Not Found', `No route for ${pathname}.`, base);
      return;
    }
    if (found.kind === 'method_not_allowed') {
      sendProblem(res, 405, 'method_not_allowed', 'Method Not Allowed', `${req.method} is not allowed here.`, {
        ...base,
        allow: found.allow.join(', '),
      });
      return;
    }
    const body = await readBody(req, maxBodyBytes);
    if (body === 'too_large') {
      sendProblem(res, 413, 'payload_too_large', 'Payload Too Large', `The body exceeds ${maxBodyBytes} bytes.`, base);
      return;
    }
    const headers = headersOf(req);
    headers['x-request-id'] = requestId;
    const fn = found.target;
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const httpData: RpcHttpData = {
      method: req.method ?? 'GET',
      url: url.toString(),
      headers,
      query,
      params: found.params,
      body: { bytes: body },
    };
    const triggerMetadata: Record<string, RpcTypedData> = {
      Headers: { json: JSON.stringify(headers) },
      Query: { json: JSON.stringify(query) },
    };
    for (const [k, v] of Object.entries(found.params)) triggerMetadata[k] = { string: v };
    const invocation = { inputData: [{ name: fn.triggerName, data: { http: httpData } }], triggerMetadata };

    const call: StreamCall = { req, res, fn, body, headers, url, invocation, base };
    if (host.streamServer) {
      await handOverInvocation(host.streamServer, call);
      return;
    }
    if (streamUri) {
      await proxyInvocation(call);
      return;
    }
    const { response } = await host.invoke(fn.name, invocation);
    const out = (response.returnValue?.http ?? response.outputData?.find((o) => o.name === '$return')?.data?.http) as
      RpcHttpData | undefined;
    const status = Number(out?.statusCode ?? 200);
    const outHeaders: Record<string, string> = { ...base, ...(out?.headers ?? {}) };
    const bytes = out?.body?.bytes ? Buffer.from(out.body.bytes) : Buffer.from(out?.body?.string ?? '');
    outHeaders['content-length'] = String(bytes.length);
    res.writeHead(status, outHeaders);
    res.end(bytes);
  }

  /**
   * The streaming path without the loopback hop: the request is handed to the library's own
   * proxy server object (its 'request' handler pairs it with the invocation by
   * `x-ms-invocation-id`, exactly as for a forwarded request) and the library writes the
   * handler's response, chunk by chunk, straight onto the client's response.
   */
  async function handOverInvocation(workerServer: http.Server, call: StreamCall): Promise<void> {
    const { req, res, fn, body, url, invocation, base } = call;
    const invocationId = randomUUID();
    const forwarded = Object.assign(Readable.from(body.length ? [body] : []), {
      method: req.method ?? 'GET',
      url: url.pathname + url.search,
      headers: forwardedHeaders(call, invocationId),
    });
    for (const [k, v] of Object.entries(base)) res.setHeader(k, v);
    const setHeader = res.setHeader.bind(res);
    res.setHeader = ((name: string, value: number | string | readonly string[]) =>
      name.toLowerCase() === 'x-ms-invocation-id' ? res : setHeader(name, value)) as typeof res.setHeader;
    workerServer.emit('request', forwarded, res);
    try {
      await host.invoke(fn.name, invocation, invocationId);
    } catch (err) {
      host.log('error', 'user', `Function ${fn.name} failed: ${(err as Error)?.stack ?? String(err)}`, { invocationId });
      if (!res.headersSent) {
        for (const k of res.getHeaderNames()) if (!(k in base)) res.removeHeader(k);
        sendProblem(res, 500, 'internal', 'Internal Server Error', 'The function failed.', base);
      } else res.destroy();
    }
  }

  async function proxyInvocation(call: StreamCall): Promise<void> {
    const { req, res, fn, body, url, invocation, base } = call;
    const invocationId = randomUUID();
    const target = new URL(url.pathname + url.search, streamUri);
    const forwardHeaders = forwardedHeaders(call, invocationId);
    let responded = false;
    const forwarded = http.request(target, { method: req.method, headers: forwardHeaders, agent: workerAgent });
    const proxied = new Promise<void>((resolve) => {
      forwarded.on('response', (proxyRes) => {
        responded = true;
        const outHeaders: Record<string, string | string[]> = { ...base };
        for (const [k, v] of Object.entries(proxyRes.headers)) {
          if (v === undefined || HOP_BY_HOP.has(k) || k === 'x-ms-invocation-id') continue;
          outHeaders[k] = v;
        }
        res.writeHead(proxyRes.statusCode ?? 500, outHeaders);
        res.flushHeaders();
        proxyRes.on('data', (chunk: Buffer) => res.write(chunk));
        proxyRes.on('end', () => {
          res.end();
          resolve();
        });
        proxyRes.on('error', () => {
          res.destroy();
          resolve();
        });
      });
      forwarded.on('error', () => resolve());
    });
    // A client that goes away mid-stream stops the worker's side too.
    res.on('close', () => {
      if (!res.writableFinished) forwarded.destroy();
    });
    forwarded.end(body);
    try {
      await host.invoke(fn.name, invocation, invocationId);
    } catch (err) {
      if (!responded) {
        forwarded.destroy();
        host.log('error', 'user', `Function ${fn.name} failed: ${(err as Error)?.stack ?? String(err)}`, {
          invocationId,
        });
        sendProblem(res, 500, 'internal', 'Internal Server Error', 'The function failed.', base);
        return;
      }
      res.destroy();
    }
    await proxied;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.bindAddress ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    router,
    close: () =>
      new Promise<void>((resolve) => {
        workerAgent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
