/**
 * Adapter contract: the exact requests AzureOpenAiChatModel and OpenAiCompatibleChatModel
 * send (path, api-version, auth header, body) and how they translate answers and errors,
 * against the fake OpenAI-compatible server.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { AZURE_OPENAI_API_VERSION, AzureOpenAiChatModel } from '../../../src/adapters/azure/azure-openai-chat-model';
import { OpenAiCompatibleChatModel } from '../../../src/adapters/openai/openai-chat-model';
import type { ChatModel, ChatRequest, ChatStreamEvent } from '../../../src/ports/chat-model';
import { appErrorOf } from '../../helpers/errors';
import { useFakeOpenAi } from '../../helpers/fake-openai';

const fakeServer = useFakeOpenAi();

const request: ChatRequest = {
  messages: [
    { role: 'system', content: 'Rules.' },
    { role: 'user', content: 'Question?' },
  ],
  maxTokens: 50,
  temperature: 0.2,
  responseFormat: 'json',
  passages: [{ citation: 1, id: 'never-sent', content: 'local only' }],
};

function azure(extra: { credential?: TokenCredential } = {}): AzureOpenAiChatModel {
  return new AzureOpenAiChatModel({
    region: 'eastus',
    endpoint: `${fakeServer().url}/acct/`,
    deployment: 'chat',
    model: 'gpt-4o-mini',
    ...(extra.credential ? { credential: extra.credential } : { apiKey: 'test-key' }),
    timeoutMs: 5_000,
  });
}

async function drain(model: ChatModel, req: ChatRequest): Promise<ChatStreamEvent[]> {
  const out: ChatStreamEvent[] = [];
  for await (const e of model.stream(req)) out.push(e);
  return out;
}

describe('AzureOpenAiChatModel requests', () => {
  it('complete: POST /openai/deployments/{d}/chat/completions?api-version with api-key and the exact body', async () => {
    fakeServer().enqueue('acct/chat', { text: '{"answer":"x"}', usage: { promptTokens: 12, completionTokens: 3 } });
    const out = await azure().complete(request);
    expect(fakeServer().requests).toHaveLength(1);
    const r = fakeServer().requests[0];
    expect(r?.method).toBe('POST');
    expect(r?.path).toBe('/acct/openai/deployments/chat/chat/completions');
    expect(r?.query).toEqual({ 'api-version': AZURE_OPENAI_API_VERSION });
    expect(r?.headers['api-key']).toBe('test-key');
    expect(r?.headers['authorization']).toBeUndefined();
    expect(r?.headers['content-type']).toBe('application/json');
    expect(r?.headers['x-stainless-retry-count']).toBe('0');
    expect(r?.body).toEqual({
      model: 'chat',
      messages: [
        { role: 'system', content: 'Rules.' },
        { role: 'user', content: 'Question?' },
      ],
      max_completion_tokens: 50,
      temperature: 0.2,
      response_format: { type: 'json_object' },
      stream: false,
    });
    expect(out).toEqual({
      text: '{"answer":"x"}',
      usage: { promptTokens: 12, completionTokens: 3, totalTokens: 15 },
      model: { region: 'eastus', deployment: 'chat', model: 'gpt-4o-mini' },
      finishReason: 'stop',
    });
  });

  it('stream: the same request with stream and stream_options.include_usage; usage from the last chunk', async () => {
    fakeServer().enqueue('acct/chat', { text: 'Twenty five days.', usage: { promptTokens: 40, completionTokens: 5 } });
    const events = await drain(azure(), { messages: [{ role: 'user', content: 'Leave?' }] });
    expect(fakeServer().requests[0]?.body).toEqual({
      model: 'chat',
      messages: [{ role: 'user', content: 'Leave?' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(events.filter((e) => e.type === 'delta').map((e) => (e.type === 'delta' ? e.text : ''))).toEqual([
      'Twenty five ',
      'days.',
    ]);
    expect(events.at(-1)).toEqual({
      type: 'done',
      completion: {
        text: 'Twenty five days.',
        usage: { promptTokens: 40, completionTokens: 5, totalTokens: 45 },
        model: { region: 'eastus', deployment: 'chat', model: 'gpt-4o-mini' },
        finishReason: 'stop',
      },
    });
  });

  it('managed identity: a bearer token for the Cognitive Services scope instead of api-key', async () => {
    const scopes: string[] = [];
    const credential: TokenCredential = {
      async getToken(scope): Promise<AccessToken> {
        scopes.push(...(Array.isArray(scope) ? scope : [scope]));
        return { token: 'entra-token', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    await azure({ credential }).complete({ messages: [{ role: 'user', content: 'hi' }] });
    expect(fakeServer().requests[0]?.headers['authorization']).toBe('Bearer entra-token');
    expect(fakeServer().requests[0]?.headers['api-key']).toBeUndefined();
    expect(scopes).toEqual(['https://cognitiveservices.azure.com/.default']);
  });

  it('429: one request (no SDK retry), rate_limited with retry-after-ms preferred', async () => {
    fakeServer().enqueue('acct/chat', { status: 429, headers: { 'retry-after-ms': '1500', 'retry-after': '30' } });
    const err = await appErrorOf(azure().complete(request));
    expect(err).toMatchObject({ code: 'rate_limited', retryAfterSeconds: 2, extensions: { retryAfterMs: 1500 } });
    fakeServer().enqueue('acct/chat', { status: 429, headers: { 'retry-after': '4' } });
    expect(await appErrorOf(azure().complete(request))).toMatchObject({
      retryAfterSeconds: 4,
      extensions: { retryAfterMs: 4000 },
    });
    expect(fakeServer().requests).toHaveLength(2);
  });

  it('5xx, timeouts and dropped connections are transient model_unavailable, asked once', async () => {
    fakeServer().enqueue('acct/chat', { status: 503 });
    expect(await appErrorOf(azure().complete(request))).toMatchObject({
      code: 'model_unavailable',
      extensions: { transient: true },
    });
    fakeServer().enqueue('acct/chat', { destroy: true });
    expect(await appErrorOf(azure().complete(request))).toMatchObject({
      code: 'model_unavailable',
      extensions: { transient: true },
    });
    fakeServer().enqueue('acct/chat', { delayMs: 2_000 });
    const slow = new AzureOpenAiChatModel({
      region: 'eastus',
      endpoint: `${fakeServer().url}/acct`,
      deployment: 'chat',
      model: 'gpt-4o-mini',
      apiKey: 'k',
      timeoutMs: 100,
    });
    expect(await appErrorOf(slow.complete(request))).toMatchObject({
      code: 'model_unavailable',
      message: expect.stringMatching(/timed out/),
    });
    expect(fakeServer().requests).toHaveLength(3);
  });

  it('400 content filter is validation_failed, not transient; 401 is internal', async () => {
    fakeServer().enqueue('acct/chat', { status: 400, errorCode: 'content_filter' });
    const filtered = await appErrorOf(azure().complete(request));
    expect(filtered.code).toBe('validation_failed');
    expect(filtered.message).toMatch(/content filter/);
    expect(filtered.extensions).toEqual({});
    fakeServer().enqueue('acct/chat', { status: 401 });
    expect((await appErrorOf(azure().complete(request))).code).toBe('internal');
  });

  it('a stream that breaks mid-answer fails with a transient error after its deltas', async () => {
    fakeServer().enqueue('acct/chat', { text: 'a b c d e f', failAfterDeltas: 1 });
    const seen: ChatStreamEvent[] = [];
    const err = await appErrorOf(
      (async () => {
        for await (const e of azure().stream(request)) seen.push(e);
      })(),
    );
    expect(seen).toEqual([{ type: 'delta', text: 'a b ', model: expect.objectContaining({ deployment: expect.any(String) }) }]);
    expect(err).toMatchObject({ code: 'model_unavailable', extensions: { transient: true } });
  });

  it('refuses both or neither of apiKey and credential', () => {
    expect(() => new AzureOpenAiChatModel({ region: 'eastus', endpoint: fakeServer().url, deployment: 'd', model: 'm' })).toThrow(
      /exactly one/,
    );
  });
});

describe('OpenAiCompatibleChatModel requests', () => {
  it('POST {baseURL}/chat/completions with a bearer key, the model name and max_tokens', async () => {
    const model = new OpenAiCompatibleChatModel({
      region: 'eastus',
      deployment: 'chat',
      model: 'gpt-4o-mini',
      requestModel: 'llama3.2',
      baseURL: `${fakeServer().url}/v1`,
      apiKey: 'sk-test',
    });
    fakeServer().enqueue('llama3.2', { text: 'Hi.', usage: { promptTokens: 5, completionTokens: 2 } });
    const out = await model.complete({ messages: [{ role: 'user', content: 'Hello' }], maxTokens: 20 });
    const r = fakeServer().requests[0];
    expect(r?.path).toBe('/v1/chat/completions');
    expect(r?.query).toEqual({});
    expect(r?.headers['authorization']).toBe('Bearer sk-test');
    expect(r?.body).toEqual({ model: 'llama3.2', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 20, stream: false });
    expect(out.model).toEqual({ region: 'eastus', deployment: 'chat', model: 'gpt-4o-mini' });
    expect(out.usage.totalTokens).toBe(7);

    fakeServer().enqueue('llama3.2', { status: 429, headers: { 'retry-after': '2' } });
    expect(await appErrorOf(model.complete({ messages: [{ role: 'user', content: 'Hello' }] }))).toMatchObject({
      code: 'rate_limited',
      retryAfterSeconds: 2,
    });
    expect(fakeServer().requests).toHaveLength(2);
  });
});
