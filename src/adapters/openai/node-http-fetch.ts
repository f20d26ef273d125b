/**
 * A `fetch` for the `openai` SDK over `node:http`/`node:https` keep-alive agents.
 *
 * Why: under the SDK, Node 20's built-in fetch (undici: Request and Headers objects, a
 * web-stream body read back chunk by chunk, signal plumbing) costs about twice the CPU per
 * small model call that this does (bench/RESULTS-model-client.md). The SDK stays (retries
 * off, its error classes, its SSE parser); only the transport under it changes.
 *
 * It implements the part of fetch the SDK uses, and hands everything else to the fallback
 * (`globalThis.fetch` by default) unchanged:
 *   - requests: `fetch(url, {method, headers, body, signal})` with a string or URL, headers as
 *     a `Headers`, a plain object or pairs, and a body that is absent, a string, bytes
 *     (ArrayBuffer or a view) or URLSearchParams. Streams, Blobs, FormData (file uploads), a
 *     `Request` object, undici's `dispatcher`, URLs with credentials and non-HTTP schemes go
 *     to the fallback.
 *   - responses: an instance of the global `Response` (NodeHttpResponse below), with the
 *     request's `url`. `text/event-stream` bodies stream (each chunk reaches the caller as it
 *     arrives); every other body is read whole first and kept as one Buffer, which `.json()`
 *     and `.text()` decode directly. Null-body answers (HEAD, 204, 205, 304) have no body.
 *     Repeated headers (set-cookie) stay separate.
 *   - redirects: with `redirect: 'follow'` (the default) a 3xx answer with a Location makes
 *     the whole call go again through the fallback, so method rewriting and header stripping
 *     across origins are exactly fetch's; `manual` returns the 3xx, `error` rejects.
 *   - content coding: no Accept-Encoding is added (the callers' JSON is small and zlib costs
 *     the CPU this module saves). When a caller sends one and the server compresses, gzip,
 *     deflate and br bodies are decoded as fetch does (the Content-Encoding header stays);
 *     any other or stacked coding is passed through as received.
 *   - errors, as undici reports them, so the SDK classifies them the same way: an abort
 *     (the SDK's timeout or the caller's signal) rejects with the signal's reason — a
 *     DOMException named AbortError — which the SDK turns into APIConnectionTimeoutError or
 *     APIUserAbortError; a network failure before the answer rejects with
 *     `TypeError('fetch failed', {cause})` (APIConnectionError); a stream that breaks off
 *     errors its body with `TypeError('terminated', {cause})`. A buffered body that breaks
 *     off rejects the call itself with `fetch failed` (undici would fail later, in `.json()`),
 *     so the SDK reports a connection error rather than a parse failure.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';

export interface NodeHttpFetchOptions {
  /** Agent for `http:` URLs (default: keep-alive, `maxSockets` per origin). */
  httpAgent?: http.Agent;
  /** Agent for `https:` URLs (default: keep-alive, `maxSockets` per origin). */
  httpsAgent?: https.Agent;
  /** Connections per origin of the default agents (default 256); more calls wait for one. */
  maxSockets?: number;
  /**
   * Idle time after which the default agents close a kept-alive socket, ms (default 4 s, like
   * undici; a shorter `Keep-Alive: timeout=` from the server wins). Closing before the server
   * does avoids sending a request on a socket the server is closing.
   */
  idleSocketTimeoutMs?: number;
  /** What handles the requests this module does not (default `globalThis.fetch`). */
  fallback?: typeof fetch;
}

export type NodeHttpFetch = typeof fetch;

/** Null-body statuses: `new Response(body)` refuses a body for them. */
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** The request body as bytes or a string, or `unsupported` for what the fallback must send. */
function bodyOf(body: RequestInit['body'], headers: Record<string, string>): string | Uint8Array | undefined | 'unsupported' {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') {
    headers['content-type'] ??= 'text/plain;charset=UTF-8';
    return body;
  }
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof URLSearchParams) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    return body.toString();
  }
  return 'unsupported';
}

/** Lower-cased request headers; repeated names are joined with `, ` as `Headers` does. */
function headersOf(init: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!init) return out;
  const add = (name: string, value: string): void => {
    const key = name.toLowerCase();
    const prior = out[key];
    out[key] = prior === undefined ? value : `${prior}, ${value}`;
  };
  if (init instanceof Headers) {
    init.forEach((value, name) => add(name, value));
  } else if (Array.isArray(init)) {
    for (const [name, value] of init) add(String(name), String(value));
  } else {
    for (const [name, value] of Object.entries(init as Record<string, string>)) add(name, String(value));
  }
  return out;
}

/** A decoder for the body's Content-Encoding, or undefined to pass the bytes through. */
function decoderFor(encoding: string | undefined): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  // Streamed answers must not wait for zlib's own buffering: flush what each chunk completes.
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    case 'deflate':
      return zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    case 'br':
      return zlib.createBrotliDecompress({
        flush: zlib.constants.BROTLI_OPERATION_FLUSH,
        finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
      });
    default:
      return undefined;
  }
}

function responseHeaders(raw: readonly string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  return headers;
}

function isEventStream(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*text\/event-stream\s*(?:;|$)/i.test(contentType);
}

/** A `fetch` over node:http keep-alive agents; see the module comment for what it covers. */
export function createNodeHttpFetch(options: NodeHttpFetchOptions = {}): NodeHttpFetch {
  const maxSockets = options.maxSockets ?? 256;
  const timeout = options.idleSocketTimeoutMs ?? 4_000;
  const httpAgent = options.httpAgent ?? new http.Agent({ keepAlive: true, maxSockets, timeout });
  const httpsAgent = options.httpsAgent ?? new https.Agent({ keepAlive: true, maxSockets, timeout });
  const fallback: typeof fetch = options.fallback ?? ((input, init) => globalThis.fetch(input, init));

  return function nodeHttpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    if (typeof input !== 'string' && !(input instanceof URL)) return fallback(input, init);
    if ('dispatcher' in init && (init as { dispatcher?: unknown }).dispatcher !== undefined) {
      return fallback(input, init);
    }
    let url: URL;
    try {
      url = typeof input === 'string' ? new URL(input) : input;
    } catch (err) {
      return Promise.reject(new TypeError('Failed to parse URL', { cause: err }));
    }
    const secure = url.protocol === 'https:';
    if ((!secure && url.protocol !== 'http:') || url.username || url.password) return fallback(input, init);

    const method = (init.method ?? 'GET').toUpperCase();
    const headers = headersOf(init.headers);
    const body = bodyOf(init.body, headers);
    if (body === 'unsupported') return fallback(input, init);
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    else if (method === 'POST' || method === 'PUT') headers['content-length'] = '0';
    else delete headers['content-length'];

    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const redirect = init.redirect ?? 'follow';
    const href = url.href;

    return new Promise<Response>((resolve, reject) => {
      // `settled`: the promise is decided; `finished`: the exchange is over (body read or failed).
      let settled = false;
      let finished = false;
      let onAbort: (() => void) | undefined;
      let failBody: ((err: unknown) => void) | undefined;

      const finish = (): void => {
        finished = true;
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      };
      const fail = (err: unknown): void => {
        if (!settled) {
          settled = true;
          finish();
          reject(err);
        } else if (!finished) {
          finish();
          failBody?.(err);
        }
      };
      // Before the answer a failure is undici's `fetch failed`; once the body flows, `terminated`.
      const networkError = (err: unknown): TypeError => new TypeError(settled ? 'terminated' : 'fetch failed', { cause: err });

      let req: http.ClientRequest;
      try {
        req = (secure ? https : http).request({
          protocol: url.protocol,
          hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
          port: url.port || undefined,
          path: `${url.pathname}${url.search}`,
          method,
          headers,
          agent: secure ? httpsAgent : httpAgent,
        });
      } catch (err) {
        // Invalid header names or values: fetch refuses them with a TypeError too.
        reject(new TypeError(err instanceof Error ? err.message : 'fetch failed', { cause: err }));
        return;
      }

      const respond = (res: http.IncomingMessage, body: Buffer | ReadableStream<Uint8Array> | null): void => {
        const init = {
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: responseHeaders(res.rawHeaders),
        };
        settled = true;
        resolve(new NodeHttpResponse(body, init, href) as unknown as Response);
      };

      const onResponse = (res: http.IncomingMessage): void => {
        const status = res.statusCode ?? 0;
        if (REDIRECT_STATUS.has(status) && res.headers.location !== undefined && redirect !== 'manual') {
          res.resume();
          settled = true;
          finish();
          if (redirect === 'error') reject(networkError(new Error(`unexpected redirect (${status}) from ${href}`)));
          else resolve(fallback(input, init));
          return;
        }
        if (method === 'HEAD' || NULL_BODY_STATUS.has(status)) {
          res.resume();
          finish();
          respond(res, null);
          return;
        }

        let source: Readable = res;
        const decoder = decoderFor(res.headers['content-encoding']);
        if (decoder) {
          decoder.on('error', (err) => fail(networkError(err)));
          source = res.pipe(decoder);
        }
        if (isEventStream(res.headers['content-type'])) {
          respond(
            res,
            streamOf(source, res, req, (failStream) => (failBody = failStream), finish),
          );
          return;
        }

        const chunks: Buffer[] = [];
        let length = 0;
        source.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.length;
        });
        source.on('end', () => {
          if (settled) return;
          finish();
          respond(res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length));
        });
        // A connection that closes before the body ends need not say so with an error event.
        res.on('close', () => {
          if (!res.complete) fail(networkError(new Error('the connection closed before the body ended')));
        });
      };

      if (signal) {
        onAbort = () => {
          fail(abortReason(signal));
          req.destroy();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      // Kept for the whole exchange: a late socket error must never become an uncaught one.
      req.on('error', (err) => fail(networkError(err)));
      req.on('response', (res) => {
        res.on('error', (err) => fail(networkError(err)));
        try {
          onResponse(res);
        } catch (err) {
          // `new Response` refuses a status outside 200–599 or a malformed status text.
          res.resume();
          fail(networkError(err));
        }
      });
      req.end(body);
    });
  };
}

const UNUSABLE = 'Body is unusable: Body has already been read';

/**
 * The Response this fetch resolves with: a real global `Response` (status, headers, `ok`,
 * `instanceof Response`), whose buffered body is kept as the Buffer it arrived in. Undici's
 * `new Response(buffer)` wraps the bytes in a web stream at once and `.json()` reads them back
 * through it, which costs about as much CPU as the whole HTTP exchange (~0.15 ms a call here);
 * `json()`/`text()` of a buffered body decode the Buffer directly, and a web stream is built
 * only if someone asks for `body`. Streamed (SSE) and null bodies are plain `Response` bodies.
 */
/**
 * `Response` as it is at run time. undici-types declares the body members as instance fields,
 * which a subclass could not override; in Node they are prototype methods and accessors.
 */
interface RuntimeResponse {
  get url(): string;
  get body(): ReadableStream<Uint8Array> | null;
  get bodyUsed(): boolean;
  readonly headers: Headers;
  readonly status: number;
  readonly statusText: string;
  text(): Promise<string>;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
  blob(): Promise<Blob>;
  formData(): Promise<FormData>;
  clone(): Response;
}
const RuntimeResponse = Response as unknown as new (
  body: ReadableStream<Uint8Array> | null,
  init: ResponseInit,
) => RuntimeResponse;

class NodeHttpResponse extends RuntimeResponse {
  readonly #url: string;
  /** The whole body, when it was buffered; undefined when `super` owns the body. */
  readonly #bytes: Buffer | undefined;
  #stream: ReadableStream<Uint8Array> | undefined;
  #used = false;

  constructor(body: Buffer | ReadableStream<Uint8Array> | null, init: ResponseInit, url: string) {
    super(Buffer.isBuffer(body) ? null : body, init);
    this.#bytes = Buffer.isBuffer(body) ? body : undefined;
    this.#url = url;
  }

  override get url(): string {
    return this.#url;
  }

  override get body(): ReadableStream<Uint8Array> | null {
    const bytes = this.#bytes;
    if (bytes === undefined) return super.body;
    // highWaterMark 0: nothing is pulled, and the body is not "used", until someone reads.
    this.#stream ??= new ReadableStream<Uint8Array>(
      {
        pull: (controller) => {
          this.#used = true;
          controller.enqueue(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          controller.close();
        },
        cancel: () => {
          this.#used = true;
        },
      },
      { highWaterMark: 0 },
    );
    return this.#stream;
  }

  override get bodyUsed(): boolean {
    return this.#bytes === undefined ? super.bodyUsed : this.#used;
  }

  /** The buffered bytes, once, as fetch allows; undefined when `super` owns the body. */
  #take(): Buffer | undefined {
    const bytes = this.#bytes;
    if (bytes === undefined) return undefined;
    if (this.#used || this.#stream?.locked) throw new TypeError(UNUSABLE);
    this.#used = true;
    // A `body` handed out but never read must not yield the bytes a second time.
    if (this.#stream) void this.#stream.cancel();
    return bytes;
  }

  /**
   * One body reader: `read` over the buffered bytes (taken once), `fallback` when `super`
   * owns the body; a body already used rejects, as fetch's readers do.
   */
  #read<T>(read: (bytes: Buffer) => T | Promise<T>, fallback: () => Promise<T>): Promise<T> {
    try {
      const bytes = this.#take();
      return bytes === undefined ? fallback() : Promise.resolve(read(bytes));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  override text(): Promise<string> {
    return this.#read(
      (bytes) => {
        // fetch decodes UTF-8 without a byte-order mark.
        const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
        return bytes.toString('utf8', bom ? 3 : 0);
      },
      () => super.text(),
    );
  }

  override json(): Promise<unknown> {
    if (this.#bytes === undefined) return super.json();
    return this.text().then((text) => JSON.parse(text) as unknown);
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return this.#read(
      (bytes) => new Uint8Array(bytes).buffer,
      () => super.arrayBuffer(),
    );
  }

  override bytes(): Promise<Uint8Array> {
    return this.#read(
      (bytes) => new Uint8Array(bytes),
      () => super.bytes(),
    );
  }

  override blob(): Promise<Blob> {
    return this.#read(
      (bytes) => new Blob([bytes], { type: this.headers.get('content-type') ?? '' }),
      () => super.blob(),
    );
  }

  override formData(): Promise<FormData> {
    // Rare for model APIs: let undici parse it.
    return this.#read(
      (bytes) => new Response(bytes, { headers: this.headers }).formData(),
      () => super.formData(),
    );
  }

  override clone(): Response {
    const bytes = this.#bytes;
    if (bytes === undefined) return super.clone();
    if (this.#used || this.#stream?.locked) throw new TypeError('Response.clone: Body has already been consumed.');
    const init = { status: this.status, statusText: this.statusText, headers: this.headers };
    return new NodeHttpResponse(bytes, init, this.#url) as unknown as Response;
  }
}

/**
 * A web stream fed from the node stream, with backpressure: the node stream pauses when the
 * web stream's queue is full and resumes when the reader pulls. Cancelling it (the SDK does
 * when the caller stops reading) destroys the request, so the socket is not reused half-read.
 */
function streamOf(
  source: Readable,
  res: http.IncomingMessage,
  req: http.ClientRequest,
  onFailure: (fail: (err: unknown) => void) => void,
  finish: () => void,
): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        onFailure((err) => {
          if (done) return;
          done = true;
          controller.error(err);
          req.destroy();
        });
        source.on('data', (chunk: Buffer) => {
          if (done) return;
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) source.pause();
        });
        source.on('end', () => {
          if (done) return;
          done = true;
          finish();
          controller.close();
        });
        res.on('close', () => {
          if (done || res.complete) return;
          done = true;
          finish();
          controller.error(new TypeError('terminated', { cause: new Error('the connection closed mid-stream') }));
        });
      },
      pull() {
        source.resume();
      },
      cancel() {
        done = true;
        finish();
        req.destroy();
      },
    },
    { highWaterMark: 16 },
  );
}

/**
 * The default transport of every OpenAI-style adapter (chat models and embedders) when the
 * caller passes no `fetch`: one pair of keep-alive agents for the process, so all clients to
 * one endpoint share its sockets.
 */
export const sharedNodeHttpFetch: NodeHttpFetch = createNodeHttpFetch();
