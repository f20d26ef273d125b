import { afterAll, describe, expect, it } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi } from '../../bench/lib/fake-openai';
import { testDeps } from '../helpers/deps';

let fake: FakeOpenAi | undefined;
afterAll(async () => {
  await fake?.close();
});

describe('createDeps: chat', () => {
  it('local mode: a gateway over LocalChatModel for the served boundary only, serving region first', async () => {
    const deps = testDeps({ MERIDIAN_SERVED_REGIONS: 'northeurope,westeurope' });
    expect(deps.chat.status().map((s) => `${s.region}/${s.deployment}`)).toEqual(['northeurope/chat', 'westeurope/chat']);
    const out = await deps.chat.complete({ messages: [{ role: 'user', content: 'Hello there' }] });
    expect(out.model).toMatchObject({ region: 'northeurope', deployment: 'chat', local: true });
    const report = await deps.health.report();
    expect(report.checks.find((c) => c.name === 'chat-models')).toMatchObject({ boundary: 'eu', status: 'ok' });
    await deps.documents.close();
  });

  it('local mode with MERIDIAN_OPENAI_BASE_URL: every deployment calls that endpoint', async () => {
    fake = await startFakeOpenAi();
    const deps = testDeps({ MERIDIAN_OPENAI_BASE_URL: `${fake.url}/v1`, MERIDIAN_OPENAI_MODEL: 'llama3.2' });
    fake.enqueue('llama3.2', { status: 429, headers: { 'retry-after': '3' } });
    const out = await deps.chat.complete({ messages: [{ role: 'user', content: 'Hi' }] });
    expect(out.model).toEqual({ region: 'westus2', deployment: 'chat', model: 'llama3.2' });
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
    await deps.documents.close();
  });
});
