/**
 * The gateway over real AzureOpenAiChatModel adapters talking to the fake OpenAI-compatible
 * server (bench/lib/fake-openai.ts), which plays one Azure OpenAI account per region
 * (endpoint `<fake>/<region>`), the eu ones included, and records every request.
 */
import { describe, expect, it } from 'vitest';
import { AzureOpenAiChatModel } from '../../src/adapters/azure/azure-openai-chat-model';
import { loadCatalog } from '../../src/config';
import { createModelGateway, deploymentsInBoundary, type ModelDeployment, type ModelGateway } from '../../src/app/model-gateway';
import type { ChatRequest, ChatStreamEvent } from '../../src/domain/chat';
import { ManualClock } from '../support/manual-clock';
import { appErrorOf } from '../helpers/errors';
import { useFakeOpenAi } from '../helpers/fake-openai';

const fakeServer = useFakeOpenAi();

const catalog = loadCatalog();
const boundaryOf = (region: string): string | undefined => catalog.regions.find((r) => r.name === region)?.boundary;

function deployment(region: string, clock: ManualClock, timeoutMs = 5_000): ModelDeployment {
  const d = catalog.deployments.find((x) => x.region === region && x.purpose === 'chat');
  if (!d) throw new Error(`no chat deployment in ${region}`);
  return {
    region,
    boundary: boundaryOf(region) as string,
    deployment: d.deployment,
    priority: d.priority,
    chat: new AzureOpenAiChatModel({
      region,
      endpoint: `${fakeServer().url}/${region}`,
      deployment: d.deployment,
      model: d.model,
      apiKey: `key-${region}`,
      timeoutMs,
      clock,
    }),
  };
}

/** The us boundary's chat deployments, chosen from config the way the composition root does. */
function usGateway(clock: ManualClock, options: { timeoutMs?: number; servingRegion?: string } = {}): ModelGateway {
  const configured = deploymentsInBoundary(catalog.deployments, boundaryOf, 'us', 'chat');
  return createModelGateway({
    deployments: configured.map((d) => deployment(d.region, clock, options.timeoutMs)),
    servingRegion: options.servingRegion ?? 'eastus',
    boundary: 'us',
    clock,
    breaker: { failureThreshold: 3, openMs: 10_000 },
  });
}

const ask: ChatRequest = { messages: [{ role: 'user', content: 'What is the leave policy?' }] };

const chatCalls = (d: string): number => fakeServer().requestsFor(d, 'chat').length;
const euCalls = (): number =>
  fakeServer().requests.filter((r) => r.deployment?.startsWith('westeurope/') || r.deployment?.startsWith('northeurope/')).length;

async function collect(events: AsyncIterable<ChatStreamEvent>): Promise<ChatStreamEvent[]> {
  const out: ChatStreamEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('model gateway: ordering and boundary', () => {
  it('config gives the us gateway only us chat deployments', () => {
    const chosen = deploymentsInBoundary(catalog.deployments, boundaryOf, 'us', 'chat');
    expect(chosen.map((d) => `${d.region}/${d.deployment}`)).toEqual(['eastus/chat', 'westus2/chat']);
  });

  it('refuses a deployment of another boundary at construction', () => {
    const clock = new ManualClock();
    expect(() =>
      createModelGateway({
        deployments: [deployment('eastus', clock), deployment('westeurope', clock)],
        servingRegion: 'eastus',
        boundary: 'us',
        clock,
      }),
    ).toThrow(/another boundary: westeurope\/chat \(eu\)/);
  });

  it('prefers the serving region, whatever its priority', async () => {
    const clock = new ManualClock();
    const east = await usGateway(clock).complete(ask);
    expect(east.model).toEqual({ region: 'eastus', deployment: 'chat', model: 'gpt-4o-mini' });
    const west = await usGateway(clock, { servingRegion: 'westus2' }).complete(ask);
    expect(west.model.region).toBe('westus2');
    expect(fakeServer().requests.map((r) => r.deployment)).toEqual(['eastus/chat', 'westus2/chat']);
  });
});

describe('model gateway: 429', () => {
  it('fails over to the same boundary, asks the throttled deployment once, and honours retry-after', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 429, headers: { 'retry-after': '7' } });
    const answer = await gw.complete(ask);
    expect(answer.model.region).toBe('westus2');
    expect(chatCalls('eastus/chat')).toBe(1); // maxRetries: 0 — the SDK did not retry the 429
    expect(euCalls()).toBe(0);

    clock.advance(6_999);
    expect((await gw.complete(ask)).model.region).toBe('westus2');
    expect(chatCalls('eastus/chat')).toBe(1); // still throttled: not even tried
    clock.advance(1);
    expect((await gw.complete(ask)).model.region).toBe('eastus');
    expect(chatCalls('eastus/chat')).toBe(2);
  });

  it('prefers retry-after-ms to retry-after', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 429, headers: { 'retry-after-ms': '2500', 'retry-after': '60' } });
    await gw.complete(ask);
    expect(gw.status()[0]).toMatchObject({ region: 'eastus', throttledUntil: clock.now() + 2_500 });
    clock.advance(2_500);
    expect((await gw.complete(ask)).model.region).toBe('eastus');
  });

  it('all throttled: 429 rate_limited with the earliest retry, rounded up, and no call to the other boundary', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 429, headers: { 'retry-after': '5' } });
    fakeServer().enqueue('westus2/chat', { status: 429, headers: { 'retry-after-ms': '2200' } });
    const err = await appErrorOf(gw.complete(ask));
    expect(err.code).toBe('rate_limited');
    expect(err.status).toBe(429);
    expect(err.retryAfterSeconds).toBe(3);
    expect(err.extensions).toEqual({});
    expect(chatCalls('eastus/chat')).toBe(1);
    expect(chatCalls('westus2/chat')).toBe(1);
    expect(euCalls()).toBe(0);

    clock.advance(1_000);
    const again = await appErrorOf(gw.complete(ask));
    expect(again.retryAfterSeconds).toBe(2); // 1.2 s left → 2
    expect(fakeServer().requests).toHaveLength(2); // answered from the throttle state, no calls
    await expect(gw.check()).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('a 429 without a retry time throttles for 1 s', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 429 });
    fakeServer().enqueue('westus2/chat', { status: 429 });
    const err = await appErrorOf(gw.complete(ask));
    expect(err.retryAfterSeconds).toBe(1);
    clock.advance(1_000);
    expect((await gw.complete(ask)).model.region).toBe('eastus');
  });
});

describe('model gateway: circuit breaker', () => {
  it('opens after 3 consecutive failures, probes after the cool-down, re-opens on a failed probe, closes on a good one', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 500 }, { status: 503 }, { status: 500 });
    for (let i = 0; i < 3; i++) expect((await gw.complete(ask)).model.region).toBe('westus2');
    expect(gw.status()[0]).toMatchObject({ circuit: 'open', consecutiveFailures: 3, openUntil: clock.now() + 10_000 });

    await gw.complete(ask);
    expect(chatCalls('eastus/chat')).toBe(3); // open: not called

    clock.advance(10_000);
    expect(gw.status()[0]?.circuit).toBe('half-open');
    fakeServer().enqueue('eastus/chat', { status: 502 });
    expect((await gw.complete(ask)).model.region).toBe('westus2');
    expect(chatCalls('eastus/chat')).toBe(4); // one probe
    expect(gw.status()[0]?.circuit).toBe('open'); // the failed probe re-opened it

    clock.advance(9_999);
    await gw.complete(ask);
    expect(chatCalls('eastus/chat')).toBe(4);
    clock.advance(1);
    expect((await gw.complete(ask)).model.region).toBe('eastus'); // good probe
    expect(gw.status()[0]).toMatchObject({ circuit: 'closed', consecutiveFailures: 0 });
    expect(euCalls()).toBe(0);
  });

  it('a success resets the count of consecutive failures', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 500 }, { status: 500 }, {}, { status: 500 });
    for (let i = 0; i < 4; i++) await gw.complete(ask);
    expect(gw.status()[0]).toMatchObject({ circuit: 'closed', consecutiveFailures: 1 });
  });

  it('times out a slow deployment and fails over', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock, { timeoutMs: 150 });
    fakeServer().enqueue('eastus/chat', { delayMs: 5_000 });
    const started = performance.now();
    expect((await gw.complete(ask)).model.region).toBe('westus2');
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(gw.status()[0]?.consecutiveFailures).toBe(1);
  });

  it('a dropped connection counts as a failure and fails over', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { destroy: true });
    expect((await gw.complete(ask)).model.region).toBe('westus2');
    expect(gw.status()[0]?.consecutiveFailures).toBe(1);
  });

  it('all open: 503 model_unavailable with Retry-After until the first probe', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().setDefault('eastus/chat', { status: 500 });
    fakeServer().setDefault('westus2/chat', { status: 500 });
    for (let i = 0; i < 2; i++) await expect(gw.complete(ask)).rejects.toMatchObject({ code: 'model_unavailable' });
    clock.advance(4_000);
    const err = await appErrorOf(gw.complete(ask)); // third failure opens both
    expect(err.code).toBe('model_unavailable');
    const last = await appErrorOf(gw.complete(ask));
    expect(last).toMatchObject({ code: 'model_unavailable', retryAfterSeconds: 10 });
    expect(fakeServer().requests).toHaveLength(6);
    expect(euCalls()).toBe(0);
  });

  it('does not fail over a request the model refuses (400 content filter)', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 400, errorCode: 'content_filter' });
    const err = await appErrorOf(gw.complete(ask));
    expect(err.code).toBe('validation_failed');
    expect(chatCalls('westus2/chat')).toBe(0);
    expect(gw.status()[0]).toMatchObject({ circuit: 'closed', consecutiveFailures: 0 });
  });
});

describe('model gateway: streaming', () => {
  it('streams deltas then done, with the usage of the include_usage chunk', async () => {
    const clock = new ManualClock();
    fakeServer().enqueue('eastus/chat', {
      text: 'Leave is twenty five days a year [1].',
      usage: { promptTokens: 111, completionTokens: 22 },
    });
    const events = await collect(usGateway(clock).stream(ask));
    const deltas = events.filter((e) => e.type === 'delta');
    expect(deltas.length).toBeGreaterThan(1);
    const last = events.at(-1);
    expect(last?.type).toBe('done');
    if (last?.type !== 'done') throw new Error('no done');
    expect(deltas.map((d) => d.text).join('')).toBe('Leave is twenty five days a year [1].');
    expect(last.completion).toMatchObject({
      text: 'Leave is twenty five days a year [1].',
      usage: { promptTokens: 111, completionTokens: 22, totalTokens: 133 },
      model: { region: 'eastus', deployment: 'chat' },
      finishReason: 'stop',
    });
    expect(fakeServer().requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('fails over before the first delta (429, and a stream that breaks before any content)', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 429, headers: { 'retry-after': '2' } });
    let events = await collect(gw.stream(ask));
    expect(events.at(-1)).toMatchObject({ type: 'done', completion: { model: { region: 'westus2' } } });

    clock.advance(2_000);
    fakeServer().enqueue('eastus/chat', { failAfterDeltas: 0 });
    events = await collect(gw.stream(ask));
    expect(events.at(-1)).toMatchObject({ type: 'done', completion: { model: { region: 'westus2' } } });
    expect(chatCalls('eastus/chat')).toBe(2);
    expect(euCalls()).toBe(0);
  });

  it('after the first delta an error propagates: no failover, no second answer', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { text: 'one two three four five six seven eight', failAfterDeltas: 2 });
    const seen: ChatStreamEvent[] = [];
    const err = await appErrorOf(
      (async () => {
        for await (const e of gw.stream(ask)) seen.push(e);
      })(),
    );
    expect(err.code).toBe('model_unavailable');
    expect(seen.map((e) => e.type)).toEqual(['delta', 'delta']);
    expect(chatCalls('westus2/chat')).toBe(0);
    expect(gw.status()[0]?.consecutiveFailures).toBe(1);
  });

  it('all throttled: the stream fails with 429 before any event', async () => {
    const clock = new ManualClock();
    const gw = usGateway(clock);
    fakeServer().enqueue('eastus/chat', { status: 429, headers: { 'retry-after': '4' } });
    fakeServer().enqueue('westus2/chat', { status: 429, headers: { 'retry-after': '9' } });
    const seen: ChatStreamEvent[] = [];
    const err = await appErrorOf(
      (async () => {
        for await (const e of gw.stream(ask)) seen.push(e);
      })(),
    );
    expect(err).toMatchObject({ code: 'rate_limited', retryAfterSeconds: 4 });
    expect(seen).toEqual([]);
  });
});
