/**
 * The local front door (Azure Front Door's part): routes each request to the devhost process
 * of the boundary of the tenant in its token. It reads the token's `tid` without verifying it
 * (the boundary process verifies). Platform-admin requests go to the boundary named by
 * `tenant=` (that tenant's) or `boundary=`. Requests without a readable token go to the first
 * running boundary process. A boundary that is not running gets 421.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { discardRest, readBody, requestIdOf, sendProblem } from './http-server';

export interface FrontDoorTenant {
  tenantId: string;
  boundary: string;
}

export interface FrontDoorOptions {
  port: number;
  /** Running boundary processes: boundary → base URL, in start order. */
  backends: Map<string, string>;
  tenants: FrontDoorTenant[];
  operatorTenantId: string;
  /** Boundaries that exist in config (to tell "not running" from "unknown"). */
  knownBoundaries: string[];
  /** Region → boundary, to route durable management URLs by the instance's home region. */
  regionBoundary?: Map<string, string>;
  /** Present when MERIDIAN_CLOCK=virtual: moves the shared clock by `ms`, returns the new time. */
  advanceClock?: (ms: number) => Promise<number>;
}

export interface RunningFrontDoor {
  port: number;
  url: string;
  close(): Promise<void>;
}

interface TokenHint {
  tid?: string;
  roles?: unknown;
}

/** Decodes a JWT payload without verifying it; undefined when it is not a readable JWT. */
export function readTokenHint(authorization: string | undefined): TokenHint | undefined {
  const m = /^Bearer\s+([^.\s]+)\.([^.\s]+)\.[^.\s]*$/i.exec(authorization ?? '');
  if (!m) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(m[2] as string, 'base64url').toString('utf8')) as unknown;
    return payload && typeof payload === 'object' ? (payload as TokenHint) : undefined;
  } catch {
    return undefined;
  }
}

/** The boundary a request belongs to, or undefined when it carries no readable tenant. */
export function boundaryFor(
  hint: TokenHint | undefined,
  url: URL,
  tenants: FrontDoorTenant[],
  operatorTenantId: string,
): string | undefined {
  if (!hint?.tid) return undefined;
  const tenant = tenants.find((t) => t.tenantId === hint.tid);
  if (!tenant) return undefined;
  const isPlatformAdmin = hint.tid === operatorTenantId && Array.isArray(hint.roles) && hint.roles.includes('platform-admin');
  if (isPlatformAdmin) {
    const target = url.searchParams.get('tenant');
    if (target) return tenants.find((t) => t.tenantId === target)?.boundary ?? tenant.boundary;
    const boundary = url.searchParams.get('boundary');
    if (boundary) return boundary;
  }
  return tenant.boundary;
}

/**
 * Durable management URLs (`/runtime/webhooks/durabletask/instances/<id>...`) carry no token;
 * instance ids encode their home region (`<region>-<hex>`), so route to that region's boundary.
 */
export function durableInstanceBoundary(url: URL, regionBoundary: Map<string, string> | undefined): string | undefined {
  const m = /^\/runtime\/webhooks\/durabletask\/instances\/([a-z0-9]+)-/.exec(url.pathname);
  return m && regionBoundary ? regionBoundary.get(m[1] as string) : undefined;
}

/** `x-meridian-region` of the responses the front door produces itself (no region served them). */
const FRONT_DOOR_REGION = 'front-door';
/** How much of a request body the front door still reads and drops once the boundary stopped taking it. */
const DISCARD_BYTES = 16 * 1024 * 1024;

type BaseHeaders = Record<'x-request-id' | 'x-meridian-region', string>;

export async function startFrontDoor(options: FrontDoorOptions): Promise<RunningFrontDoor> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });
  const server = http.createServer((req, res) => {
    const base: BaseHeaders = { 'x-request-id': requestIdOf(req), 'x-meridian-region': FRONT_DOOR_REGION };
    void handle(req, res, base).catch(() =>
      sendProblem(res, 502, 'unavailable', 'Bad Gateway', 'The boundary process failed.', base),
    );
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, base: BaseHeaders): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const requestId = base['x-request-id'];
    if (url.pathname === '/_devhost/clock/advance') {
      await advance(req, res, base);
      return;
    }
    const hint = readTokenHint(req.headers.authorization);
    const boundary =
      boundaryFor(hint, url, options.tenants, options.operatorTenantId) ?? durableInstanceBoundary(url, options.regionBoundary);
    let target: string | undefined;
    if (boundary === undefined) target = options.backends.values().next().value;
    else target = options.backends.get(boundary);
    if (!target) {
      const known = boundary !== undefined && options.knownBoundaries.includes(boundary);
      sendProblem(
        res,
        421,
        'misdirected_boundary',
        'Misdirected request: wrong residency boundary',
        known ? `Boundary ${boundary} is not running here.` : `No boundary process can serve this request.`,
        base,
        boundary ? { boundary } : {},
      );
      return;
    }
    const headers = { ...req.headers, 'x-request-id': requestId, 'x-forwarded-host': req.headers.host ?? '' };
    delete headers.connection;
    const upstream = http.request(new URL(url.pathname + url.search, target), { method: req.method, headers, agent });
    let relayed: http.IncomingMessage | undefined;
    upstream.on('response', (up) => {
      relayed = up;
      res.writeHead(up.statusCode ?? 502, up.headers);
      res.flushHeaders();
      up.pipe(res);
    });
    // A boundary may answer before it has read the whole body (413) and then stop reading: the
    // write side fails or the connection closes after its answer arrived. Relay that answer,
    // and read the rest of the client's body (bounded) so the client gets to read it too.
    let released = false;
    const release = (): void => {
      if (released || req.complete) return;
      released = true;
      req.unpipe(upstream);
      discardRest(req, DISCARD_BYTES);
    };
    upstream.on('close', release);
    upstream.on('error', () => {
      release();
      if (!relayed) sendProblem(res, 502, 'unavailable', 'Bad Gateway', `Boundary ${boundary ?? ''} did not answer.`, base);
      else if (!relayed.complete) res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  async function advance(req: http.IncomingMessage, res: http.ServerResponse, base: BaseHeaders): Promise<void> {
    if (req.method !== 'POST') {
      sendProblem(res, 405, 'method_not_allowed', 'Method Not Allowed', 'Use POST.', { ...base, allow: 'POST' });
      return;
    }
    if (!options.advanceClock) {
      sendProblem(res, 409, 'conflict', 'Conflict', 'The clock is not virtual: start with MERIDIAN_CLOCK=virtual.', base);
      return;
    }
    const body = await readBody(req, 1024);
    let ms: unknown;
    try {
      ms = body === 'too_large' ? undefined : (JSON.parse(body.toString()) as { ms?: unknown }).ms;
    } catch {
      ms = undefined;
    }
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      sendProblem(res, 400, 'validation_failed', 'Validation failed', 'Body must be {"ms": <non-negative number>}.', base);
      return;
    }
    const now = await options.advanceClock(ms);
    res
      .writeHead(200, { 'content-type': 'application/json', ...base })
      .end(JSON.stringify({ now, iso: new Date(now).toISOString() }));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
