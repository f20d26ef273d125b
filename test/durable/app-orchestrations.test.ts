/**
 * The app's own `evaluation` and `sessionLifecycle` orchestrations (functions/orchestrations)
 * on devhost's durable engine, in-process, with a document store that fails on demand: a
 * transient store error is retried and the work completes; a permanent one ends the
 * evaluation or session `failed` (never `running`/`active`/`evaluating` for good) and
 * releases the evaluation's dedupe claim. Time is a virtual clock advanced only while the
 * engine is idle, so retry backoffs and session timers fire in order without sleeping.
 * (The e2e suite runs the same code through `npm start`, where no store fault can be injected.)
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDurableEngine, type RunningDurableEngine } from '../../devhost/durable';
import { installFunctionsCore } from '../../devhost/functions-core';
import { FunctionHost } from '../../devhost/host';
import { startHttpServer, type ExtraHandler, type RunningHttpServer } from '../../devhost/http-server';
import { VirtualClock } from '../../devhost/virtual-clock';
import { RETRY_ATTEMPTS } from '../../functions/orchestrations/retry-policy';
import { CLOCK_HOOK } from '../../src/adapters/local/clock';
import { createEvaluations, EVALUATIONS_CONTAINER } from '../../src/app/evaluations';
import { createSessions, SESSIONS_CONTAINER } from '../../src/app/sessions';
import type { Deps } from '../../src/composition';
import { AppError } from '../../src/domain/errors';
import type { Principal } from '../../src/domain/tenancy';
import type { DocumentStore, Item } from '../../src/ports/document-store';
import type { Orchestrations } from '../../src/ports/orchestrations';
import { testDeps } from '../helpers/deps';

const ROOT = path.resolve(__dirname, '../..');

/** A store failure to inject: which writes fail, and how many more times (Infinity: always). */
interface Fault {
  op: 'create' | 'upsert' | 'replace';
  matches: (container: string, item: Item) => boolean;
  remaining: number;
}
let fault: Fault | undefined;
let injected = 0;

/** `deps.documents` with `fault` applied; everything else passes through. */
function faulty(real: DocumentStore): DocumentStore {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'create' || prop === 'upsert' || prop === 'replace') {
        return async (container: string, item: Item, options?: unknown) => {
          if (fault && fault.op === prop && fault.remaining > 0 && fault.matches(container, item)) {
            fault.remaining--;
            injected++;
            throw new AppError('unavailable', `${container}: service unavailable (injected)`);
          }
          return (target[prop] as (...a: unknown[]) => Promise<unknown>).call(target, container, item, options);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

let deps: Deps;
let host: FunctionHost;
let server: RunningHttpServer;
let durable: RunningDurableEngine;
const clock = new VirtualClock(Date.UTC(2026, 0, 1));
const alice = { tenantId: 'tenant-acme-corp', userId: 'alice', roles: [], boundary: 'us' } as unknown as Principal;
const orchestrations: Orchestrations = {
  start: async (name, id, input) => void durable.engine.startNew(name, id, input),
  raise: async (id, event, data) => durable.engine.raiseEvent(id, event, data),
};

beforeAll(async () => {
  (globalThis as Record<symbol, unknown>)[CLOCK_HOOK] = clock;
  deps = testDeps();
  deps.documents = faulty(deps.documents);
  host = new FunctionHost({ appDir: ROOT });
  // The function files (TypeScript, loaded by vitest) register on devhost's stand-in core,
  // which must be installed before their first `app.*` call; load() then finds them.
  installFunctionsCore(host.core);
  await import('../../functions/evaluations.js');
  await import('../../functions/sessions.js');
  await host.load([]);
  let handler: ExtraHandler = () => false;
  server = await startHttpServer({
    host,
    routePrefix: 'api',
    maxBodyBytes: 1 << 20,
    region: 'eastus',
    extraHandlers: [(req, res, url) => handler(req, res, url)],
  });
  process.env['WEBSITE_HOSTNAME'] = `127.0.0.1:${server.port}`;
  durable = await startDurableEngine({
    host,
    dbFile: path.join(deps.config.dataDir, 'durable.sqlite'),
    clock,
    region: 'eastus',
    taskHubName: 'apporchestrations',
    baseUrl: () => server.url,
  });
  handler = durable.httpHandler;
});

afterAll(async () => {
  await durable?.stop();
  await server?.close();
  delete (globalThis as Record<symbol, unknown>)[CLOCK_HOOK];
});

afterEach(() => {
  fault = undefined;
  injected = 0;
});

/**
 * Runs the engine until `done` holds: waits (real time) for it to go idle, then moves the
 * virtual clock one second so the next due timer (retry backoff, session timer) fires.
 */
async function drive<T>(done: () => Promise<T | undefined>, maxVirtualMs = 30 * 60_000): Promise<T> {
  const startedAt = clock.now();
  for (;;) {
    const stats = durable.stats();
    if (stats.active === 0 && stats.readyInstances === 0 && stats.queuedWork === 0) {
      const value = await done();
      if (value !== undefined) return value;
      if (clock.now() - startedAt > maxVirtualMs) throw new Error(`not done after ${maxVirtualMs} virtual ms`);
      clock.advance(1_000);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

const terminal = (id: string) => async () => {
  const s = durable.engine.status(id);
  return s && ['Completed', 'Failed', 'Terminated'].includes(s.runtimeStatus) ? s : undefined;
};

const isCriterion = (container: string, item: Item) =>
  container === EVALUATIONS_CONTAINER && (item as { type?: string }).type === 'criterion';

let question = 0;
const ragRequest = () => ({
  kind: 'rag' as const,
  question: `What is the failover region? (${++question})`,
  answer: 'westus2',
  contexts: ['eastus fails over to westus2.'],
});

describe('evaluation orchestration: store failures', () => {
  it('retries a criterion write that fails once; the evaluation completes', async () => {
    fault = { op: 'upsert', matches: isCriterion, remaining: 1 };
    const evaluations = createEvaluations(deps);
    const { evaluationId } = await evaluations.start(alice, ragRequest(), { requestId: 'r1' }, orchestrations);
    const status = await drive(terminal(evaluationId));
    expect(injected).toBe(1);
    expect(status.runtimeStatus).toBe('Completed');
    expect(status.output).toMatchObject({ status: 'completed' });
    const got = await evaluations.get(alice, evaluationId);
    expect(got.status).toBe('completed');
    expect(got.result?.criteria.map((c) => c.id)).toEqual(['groundedness', 'relevance', 'citation-accuracy']);
  });

  it('marks the evaluation failed with the reason after the last attempt and releases the dedupe claim', async () => {
    fault = { op: 'upsert', matches: isCriterion, remaining: Infinity };
    const evaluations = createEvaluations(deps);
    const request = ragRequest();
    const first = await evaluations.start(alice, request, { requestId: 'r1' }, orchestrations);
    await drive(terminal(first.evaluationId));
    expect(injected).toBeGreaterThanOrEqual(RETRY_ATTEMPTS);
    expect(await evaluations.get(alice, first.evaluationId)).toEqual({ evaluationId: first.evaluationId, status: 'failed' });
    const doc = await deps.documents.read<Item & { error?: string }>(EVALUATIONS_CONTAINER, alice.tenantId, first.evaluationId);
    expect(doc?.error).toMatch(/evaluateCriterion.*service unavailable \(injected\)/);

    // The identical request within the hour starts a new evaluation, which now succeeds.
    fault = undefined;
    const again = await evaluations.start(alice, request, { requestId: 'r2' }, orchestrations);
    expect(again).toMatchObject({ existing: false, status: 'running' });
    expect(again.evaluationId).not.toBe(first.evaluationId);
    await drive(terminal(again.evaluationId));
    expect((await evaluations.get(alice, again.evaluationId)).status).toBe('completed');
  });
});

describe('sessionLifecycle orchestration: store failures', () => {
  const sessions = () => createSessions(deps);
  const sessionStatus = (id: string) => async () => {
    const view = await sessions().get(alice, id);
    return ['completed', 'expired', 'failed'].includes(view.status) ? view : undefined;
  };
  const isSessionEvaluation = (container: string, item: Item) =>
    container === EVALUATIONS_CONTAINER && (item as { kind?: string }).kind === 'session';

  it('retries a close that fails once; the ended session completes with its evaluation', async () => {
    const { sessionId } = await sessions().start(alice, { scenario: 'sales-discovery' }, ctx(), orchestrations);
    await sessions().message(alice, sessionId, 'What does your process look like today?', ctx(), orchestrations);
    fault = { op: 'create', matches: isSessionEvaluation, remaining: 1 };
    await sessions().end(alice, sessionId, orchestrations);
    const view = await drive(sessionStatus(sessionId));
    expect(injected).toBe(1);
    expect(view.status).toBe('completed');
    expect(view.evaluation?.criteria.length).toBeGreaterThan(0);
  });

  it('an idle close that keeps failing ends the session failed, not active or evaluating for good', async () => {
    const { sessionId } = await sessions().start(alice, { scenario: 'sales-discovery' }, ctx(), orchestrations);
    fault = { op: 'create', matches: isSessionEvaluation, remaining: Infinity };
    const view = await drive(sessionStatus(sessionId));
    expect(injected).toBe(RETRY_ATTEMPTS);
    expect(view.status).toBe('failed');
    expect(view.endedAt).toBeDefined();
    const doc = await deps.documents.read<Item & { error?: string }>(SESSIONS_CONTAINER, alice.tenantId, sessionId);
    expect(doc?.error).toMatch(/closeSession.*service unavailable \(injected\)/);
  });

  it('a session whose evaluation keeps failing ends failed, and so does its evaluation', async () => {
    const { sessionId } = await sessions().start(alice, { scenario: 'sales-discovery' }, ctx(), orchestrations);
    await sessions().message(alice, sessionId, 'How do you decide on new tools?', ctx(), orchestrations);
    fault = { op: 'upsert', matches: isCriterion, remaining: Infinity };
    await sessions().end(alice, sessionId, orchestrations);
    const view = await drive(sessionStatus(sessionId));
    expect(view.status).toBe('failed');
    expect(view.evaluation).toBeUndefined();
    const evaluation = await deps.documents.read<Item & { status: string }>(
      EVALUATIONS_CONTAINER,
      alice.tenantId,
      `${sessionId}:evaluation`,
    );
    expect(evaluation?.status).toBe('failed');
  });
});

let invocation = 0;
function ctx() {
  invocation++;
  return { requestId: `req-${invocation}`, invocationId: `inv-${invocation}` };
}
