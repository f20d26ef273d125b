/**
 * The shared edge of every HTTP function: request id, authentication and the residency guard,
 * role checks, body validation, and mapping any error to an RFC 9457 problem. Function files
 * stay short: they declare what they need and call a use case.
 */
import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { requireRole } from '../../src/app/auth';
import { toProblem } from '../../src/app/problem';
import { getDeps, type Deps } from '../../src/composition';
import { AppError, isAppError } from '../../src/domain/errors';
import type { Principal, Role } from '../../src/domain/tenancy';
import type { Logger } from '../../src/ports/logger';

export interface RouteContext {
  req: HttpRequest;
  context: InvocationContext;
  deps: Deps;
  requestId: string;
  log: Logger;
}

export interface AuthedContext extends RouteContext {
  principal: Principal;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Counters for refusals that are logged, not stored (401, 421): API.md "Auth". */
export const refusalCounters = { unauthorized: 0, misdirected_boundary: 0 };

export function requestIdOf(req: HttpRequest): string {
  const given = req.headers.get('x-request-id');
  return given && REQUEST_ID.test(given) ? given : randomUUID();
}

type Handler<C> = (ctx: C) => Promise<HttpResponseInit>;

function finish(res: HttpResponseInit, requestId: string, region: string): HttpResponseInit {
  const headers = new Headers(res.headers as ConstructorParameters<typeof Headers>[0]);
  headers.set('x-request-id', requestId);
  headers.set('x-meridian-region', region);
  return { ...res, headers };
}

async function run<C extends RouteContext>(
  req: HttpRequest,
  context: InvocationContext,
  body: (base: RouteContext) => Promise<{ ctx: C } | HttpResponseInit>,
  handler: Handler<C>,
): Promise<HttpResponseInit> {
  const deps = getDeps();
  const requestId = requestIdOf(req);
  const log = deps.logger.child({ requestId, invocationId: context.invocationId });
  const base: RouteContext = { req, context, deps, requestId, log };
  let ctx: C | undefined;
  try {
    const prepared = await body(base);
    if (!('ctx' in prepared)) return finish(prepared, requestId, deps.config.region);
    ctx = prepared.ctx;
    return finish(await handler(ctx), requestId, deps.config.region);
  } catch (err) {
    const problem = toProblem(err, requestId);
    if (problem.status >= 500) log.error('request failed', { err, method: req.method, url: req.url });
    else if (err instanceof AppError && (err.code === 'unauthorized' || err.code === 'misdirected_boundary')) {
      refusalCounters[err.code] += 1;
      log.info('request refused', { code: err.code, method: req.method, path: new URL(req.url).pathname });
    } else if (isAppError(err, 'forbidden')) {
      // Every 403, whether the route's role check or a use case refused it (API.md "Auth").
      const principal = (ctx as Partial<AuthedContext> | undefined)?.principal;
      if (ctx && principal) await recordForbidden({ ...ctx, principal }, err);
    }
    return finish({ status: problem.status, headers: problem.headers, jsonBody: problem.body }, requestId, deps.config.region);
  }
}

/** An endpoint anyone may call. */
export function anonymous(handler: Handler<RouteContext>): HttpHandler {
  return (req, context) => run(req, context, async (base) => ({ ctx: base }), handler);
}

export interface AuthOptions {
  /** Any one of these roles (else 403, stored as a security event). */
  roles?: readonly Role[];
  /**
   * A platform-admin may call the route in any boundary: only for routes that read tenant-free
   * or aggregate data (usage totals, index status, health details; API.md "Auth"). Any other
   * route answers 421 to a token whose tenant lives elsewhere, the operator tenant's included.
   */
  crossBoundary?: boolean;
}

/**
 * An endpoint that needs a valid token of a tenant served here; `roles`: any one of them. A
 * 403 `forbidden`, from this role check or thrown by the handler, is stored as a security event.
 */
export function authenticated(options: AuthOptions, handler: Handler<AuthedContext>): HttpHandler {
  return (req, context) =>
    run(
      req,
      context,
      async (base) => {
        const principal = await base.deps.auth.authenticate(base.req.headers.get('authorization'), options);
        return { ctx: { ...base, principal, log: base.log.child({ tenantId: principal.tenantId }) } };
      },
      async (ctx) => {
        if (options.roles) requireRole(ctx.principal, options.roles);
        return handler(ctx);
      },
    );
}

/**
 * Optional authentication: anonymous callers get `principal: undefined`; a present but invalid
 * token is still a 401 (a client that sends a bad token should hear about it).
 */
export function optionallyAuthenticated(
  options: Pick<AuthOptions, 'crossBoundary'>,
  handler: Handler<RouteContext & { principal?: Principal }>,
): HttpHandler {
  return (req, context) =>
    run(
      req,
      context,
      async (base) => {
        const header = base.req.headers.get('authorization');
        if (!header) return { ctx: base };
        const principal = await base.deps.auth.authenticate(header, options);
        return { ctx: { ...base, principal } };
      },
      handler,
    );
}

/** Stores a 403 in the caller's own tenant (the audit log chains it); a failure is only logged. */
async function recordForbidden(ctx: AuthedContext, err: AppError): Promise<void> {
  const roles = err.extensions['requiredRoles'];
  try {
    await ctx.deps.securityEvents.record({
      kind: 'forbidden',
      principal: ctx.principal,
      requestId: ctx.requestId,
      method: ctx.req.method,
      route: new URL(ctx.req.url).pathname,
      requiredRoles: Array.isArray(roles) ? roles.map(String) : [],
    });
  } catch (err) {
    ctx.log.error('could not record a security event', { err });
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers };
}

/**
 * Reads a JSON body and validates it with a strict zod schema (unknown fields → 400).
 * @throws AppError 415 for a non-JSON content type, 400 for malformed JSON or invalid fields.
 */
export async function readJson<T>(req: HttpRequest, schema: z.ZodType<T>): Promise<T> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new AppError('unsupported_media_type', 'The body must be application/json.');
  }
  return parseJson(await readText(req), schema);
}

const NO_FIELDS = z.object({}).strict();

/**
 * For a route that takes no request body (API.md "—"): none at all, or the empty JSON object.
 * @throws AppError 400 for anything else: malformed JSON, any field, a non-object.
 */
export async function readNoBody(req: HttpRequest): Promise<void> {
  const text = await readText(req);
  if (text.trim() !== '') parseJson(text, NO_FIELDS);
}

/**
 * The request body, never more than `limit` bytes (default the configured
 * `MERIDIAN_MAX_BODY_BYTES`): the declared length is checked first, then the bytes as they
 * arrive (a chunked body declares none). The Functions host in Azure accepts up to ~100 MB and
 * `req.text()` would buffer all of it before any check; devhost enforces the limit itself too.
 * @throws AppError `payload_too_large` (413) beyond the limit.
 */
export async function readBody(
  req: HttpRequest,
  limit = getDeps().config.http.maxBodyBytes,
  what = 'Request bodies',
): Promise<Buffer> {
  const tooLarge = () => new AppError('payload_too_large', `${what} are limited to ${limit} bytes.`);
  const declared = Number(req.headers.get('content-length') ?? Number.NaN);
  if (declared > limit) throw tooLarge();
  if (!req.body) return Buffer.alloc(0);
  const reader = req.body.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += (value as Uint8Array).byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(Buffer.from(value as Uint8Array));
  }
  return Buffer.concat(chunks, size);
}

/** The body as text, decoded as `Request.text()` does (UTF-8, a leading BOM dropped). */
async function readText(req: HttpRequest): Promise<string> {
  const text = (await readBody(req)).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function parseJson<T>(text: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AppError('validation_failed', 'The body is not valid JSON.');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new AppError('validation_failed', errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '), {
      extensions: { errors },
    });
  }
  return parsed.data;
}

/**
 * Reads the query string with a strict zod schema over string values: unknown or repeated
 * parameters and bad values are a 400 `validation_failed` (API.md "Conventions").
 */
export function readQuery<T>(req: HttpRequest, schema: z.ZodType<T>): T {
  const raw: Record<string, string> = {};
  const errors: { path: string; message: string }[] = [];
  for (const [key, value] of new URL(req.url).searchParams) {
    if (key in raw) errors.push({ path: key, message: 'given more than once' });
    raw[key] = value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    errors.push(
      ...parsed.error.issues.map((i) => ({
        path: i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : ''),
        message: i.message,
      })),
    );
  }
  if (errors.length || !parsed.success) {
    throw new AppError('validation_failed', errors.map((e) => `${e.path || '(query)'}: ${e.message}`).join('; '), {
      extensions: { errors },
    });
  }
  return parsed.data;
}
