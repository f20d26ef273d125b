/**
 * The Durable Functions extension's HTTP API, as the real `DurableClient` calls it under
 * `rpcBaseUrl` and as `createCheckStatusResponse` links to it (the `/runtime/webhooks/durabletask`
 * management URLs): both are served from the same paths here.
 */
import type http from 'node:http';
import { readBody, sendProblem, type ExtraHandler } from '../http-server';
import { EngineError, type DurableEngine, type InstanceStatus } from './engine';
import { newInstanceId } from './ids';
import type { RuntimeStatus } from './store';

export const WEBHOOK_PREFIX = '/runtime/webhooks/durabletask';
const INSTANCE_PLACEHOLDER = 'INSTANCEID';
const DEFAULT_PAGE = 100;
const RUNTIME_STATUSES = new Set<RuntimeStatus>([
  'Pending',
  'Running',
  'Completed',
  'ContinuedAsNew',
  'Failed',
  'Terminated',
  'Suspended',
]);

/** The data of a `durableClient` input binding (what `getClient` / `DurableClient` read). */
export interface DurableClientBindingData {
  taskHubName: string;
  creationUrls: Record<string, string>;
  managementUrls: Record<string, string>;
  baseUrl: string;
  requiredQueryStringParameters: string;
  rpcBaseUrl: string;
}

/** Binding data pointing at `origin` (e.g. `http://127.0.0.1:54321`), the server that serves {@link createDurableHttpHandler}. */
export function clientBindingData(origin: string, taskHubName: string): DurableClientBindingData {
  const root = `${origin.replace(/\/+$/, '')}${WEBHOOK_PREFIX}`;
  const qs = `taskHub=${encodeURIComponent(taskHubName)}&connection=Storage`;
  const instance = `${root}/instances/${INSTANCE_PLACEHOLDER}`;
  return {
    taskHubName,
    creationUrls: {
      createNewInstancePostUri: `${root}/orchestrators/{functionName}[/{instanceId}]?${qs}`,
      createAndWaitOnNewInstancePostUri: `${root}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&${qs}`,
    },
    managementUrls: {
      id: INSTANCE_PLACEHOLDER,
      statusQueryGetUri: `${instance}?${qs}`,
      sendEventPostUri: `${instance}/raiseEvent/{eventName}?${qs}`,
      terminatePostUri: `${instance}/terminate?reason={text}&${qs}`,
      rewindPostUri: `${instance}/rewind?reason={text}&${qs}`,
      purgeHistoryDeleteUri: `${instance}?${qs}`,
      suspendPostUri: `${instance}/suspend?reason={text}&${qs}`,
      resumePostUri: `${instance}/resume?reason={text}&${qs}`,
    },
    baseUrl: root,
    requiredQueryStringParameters: qs,
    rpcBaseUrl: `${root}/`,
  };
}

export interface DurableHttpOptions {
  engine: DurableEngine;
  taskHubName: string;
  /** Region encoded into generated instance ids. */
  region: string;
  /** The origin clients reach this server at (used in returned management URLs). */
  origin: () => string;
  maxBodyBytes?: number;
}

/** An `ExtraHandler` for devhost's HTTP server; answers only paths under {@link WEBHOOK_PREFIX}. */
export function createDurableHttpHandler(options: DurableHttpOptions): ExtraHandler {
  const { engine } = options;
  const limit = options.maxBodyBytes ?? 4 * 1024 * 1024;

  return async (req, res, url) => {
    const path = url.pathname;
    if (path !== WEBHOOK_PREFIX && !path.startsWith(`${WEBHOOK_PREFIX}/`)) return false;
    const parts = path
      .slice(WEBHOOK_PREFIX.length)
      .split('/')
      .filter((p) => p !== '')
      .map((p) => decodeURIComponent(p));
    const method = req.method ?? 'GET';
    try {
      const [collection, a, b, c] = parts;
      if (collection === 'orchestrators' && a && method === 'POST' && parts.length <= 3) {
        const body = await readBody(req, limit);
        if (body === 'too_large') return (problem(res, 413, 'payload_too_large', `The body exceeds ${limit} bytes.`), true);
        const text = body.toString('utf8').trim();
        let input: unknown;
        if (text !== '') {
          try {
            input = JSON.parse(text) as unknown;
          } catch {
            return (problem(res, 400, 'validation_failed', 'The orchestration input is not valid JSON.'), true);
          }
        }
        const id = engine.startNew(a, b ?? newInstanceId(options.region), input);
        const links = managementLinks(options.origin(), options.taskHubName, id);
        json(res, 202, links, { location: links['statusQueryGetUri'] ?? '', 'retry-after': '10' });
        return true;
      }
      if (collection === 'instances') {
        if (!a) {
          if (method === 'GET') return (listInstances(engine, req, res, url), true);
          if (method === 'DELETE') return (purgeBy(engine, res, url), true);
          return (problem(res, 405, 'method_not_allowed', `${method} is not allowed here.`), true);
        }
        if (!b) {
          if (method === 'GET') {
            const status = engine.status(a, {
              showHistory: url.searchParams.get('showHistory') === 'true',
              showInput: url.searchParams.get('showInput') !== 'false',
            });
            if (!status) return (problem(res, 404, 'not_found', `No instance with ID '${a}' found.`), true);
            json(res, httpStatusOf(status), status);
            return true;
          }
          if (method === 'DELETE') {
            if (!engine.purge(a)) return (problem(res, 404, 'not_found', `No instance with ID '${a}' found.`), true);
            json(res, 200, { instancesDeleted: 1 });
            return true;
          }
        }
        if (method === 'POST' && b === 'raiseEvent' && c) {
          const body = await readBody(req, limit);
          if (body === 'too_large') return (problem(res, 413, 'payload_too_large', `The body exceeds ${limit} bytes.`), true);
          const text = body.toString('utf8').trim();
          let data: unknown = null;
          if (text !== '') {
            try {
              data = JSON.parse(text) as unknown;
            } catch {
              return (problem(res, 400, 'validation_failed', 'The event data is not valid JSON.'), true);
            }
          }
          engine.raiseEvent(a, c, data);
          return (accepted(res), true);
        }
        if (method === 'POST' && b === 'terminate' && !c) {
          engine.terminate(a, url.searchParams.get('reason') ?? '');
          return (accepted(res), true);
        }
        if (method === 'POST' && b === 'suspend' && !c) return (engine.suspend(a), accepted(res), true);
        if (method === 'POST' && b === 'resume' && !c) return (engine.resume(a), accepted(res), true);
        if (b === 'rewind' || b === 'restart') {
          return (problem(res, 501, 'not_implemented', `devhost's durable engine does not support ${b}.`), true);
        }
      }
      if (collection === 'entities') {
        return (problem(res, 501, 'not_implemented', "devhost's durable engine does not support durable entities."), true);
      }
      problem(res, 404, 'not_found', `No durable task API route for ${method} ${path}.`);
      return true;
    } catch (err) {
      if (err instanceof EngineError) {
        const status = { not_found: 404, conflict: 409, gone: 410, bad_request: 400 }[err.code];
        problem(res, status, err.code === 'bad_request' ? 'validation_failed' : err.code, err.message);
        return true;
      }
      throw err;
    }
  };
}

/** The management payload (`createHttpManagementPayload` shape) for an instance. */
export function managementLinks(origin: string, taskHubName: string, instanceId: string): Record<string, string> {
  const data = clientBindingData(origin, taskHubName).managementUrls;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) out[k] = v.replace(INSTANCE_PLACEHOLDER, encodeURIComponent(instanceId));
  return out;
}

function httpStatusOf(status: InstanceStatus): number {
  if (status.runtimeStatus === 'Completed') return 200;
  if (status.runtimeStatus === 'Failed' || status.runtimeStatus === 'Terminated') return 400;
  return 202;
}

interface Filter {
  createdFrom?: number;
  createdTo?: number;
  statuses?: RuntimeStatus[];
}

function filterOf(url: URL): Filter | string {
  const f: Filter = {};
  const from = url.searchParams.get('createdTimeFrom');
  const to = url.searchParams.get('createdTimeTo');
  const statuses = url.searchParams.get('runtimeStatus');
  if (from) {
    f.createdFrom = Date.parse(from);
    if (Number.isNaN(f.createdFrom)) return `createdTimeFrom is not a date: ${from}`;
  }
  if (to) {
    f.createdTo = Date.parse(to);
    if (Number.isNaN(f.createdTo)) return `createdTimeTo is not a date: ${to}`;
  }
  if (statuses) {
    const list = statuses.split(',').map((s) => s.trim()) as RuntimeStatus[];
    const bad = list.find((s) => !RUNTIME_STATUSES.has(s));
    if (bad) return `Unknown runtimeStatus: ${bad}`;
    f.statuses = list;
  }
  return f;
}

function listInstances(engine: DurableEngine, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
  const filter = filterOf(url);
  if (typeof filter === 'string') return problem(res, 400, 'validation_failed', filter);
  const top = Number(url.searchParams.get('top') ?? DEFAULT_PAGE);
  const limit = Number.isInteger(top) && top > 0 ? Math.min(top, 1000) : DEFAULT_PAGE;
  const token = req.headers['x-ms-continuation-token'];
  let after: { createdAt: number; id: string } | undefined;
  if (typeof token === 'string' && token !== '') {
    try {
      const [createdAt, id] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [number, string];
      after = { createdAt, id };
    } catch {
      return problem(res, 400, 'validation_failed', 'Invalid x-ms-continuation-token.');
    }
  }
  const rows = engine.list({ ...filter, ...(after ? { after } : {}), limit: limit + 1 });
  const page = rows.slice(0, limit);
  const headers: Record<string, string> = {};
  const last = page[page.length - 1];
  if (rows.length > limit && last) {
    headers['x-ms-continuation-token'] = Buffer.from(JSON.stringify([Date.parse(last.createdTime), last.instanceId])).toString(
      'base64url',
    );
  }
  json(res, 200, page, headers);
}

function purgeBy(engine: DurableEngine, res: http.ServerResponse, url: URL): void {
  const filter = filterOf(url);
  if (typeof filter === 'string') return problem(res, 400, 'validation_failed', filter);
  const statuses = (filter.statuses ?? ['Completed', 'Failed', 'Terminated']).filter(
    (s) => s === 'Completed' || s === 'Failed' || s === 'Terminated',
  );
  let deleted = 0;
  if (statuses.length > 0) {
    for (;;) {
      const batch = engine.list({ ...filter, statuses, limit: 500 });
      for (const s of batch) if (engine.purge(s.instanceId)) deleted++;
      if (batch.length < 500) break;
    }
  }
  if (deleted === 0) return problem(res, 404, 'not_found', 'No instances matched.');
  json(res, 200, { instancesDeleted: deleted });
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function accepted(res: http.ServerResponse): void {
  res.writeHead(202, { 'content-length': '0' });
  res.end();
}

function problem(res: http.ServerResponse, status: number, code: string, detail: string): void {
  sendProblem(res, status, code, http_title(status), detail);
}

function http_title(status: number): string {
  return (
    {
      400: 'Bad Request',
      404: 'Not Found',
      405: 'Method Not Allowed',
      409: 'Conflict',
      410: 'Gone',
      413: 'Payload Too Large',
      501: 'Not Implemented',
    }[status] ?? 'Error'
  );
}
