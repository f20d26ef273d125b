import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { LOCAL_MODEL_NAME, LocalChatModel, NOT_IN_DOCUMENTS } from '../../../src/adapters/local/local-chat-model';
import type { ChatRequest, ChatStreamEvent } from '../../../src/domain/chat';
import { assemblePrompt, extractCitations, type PromptPassage } from '../../../src/domain/prompt';

const model = new LocalChatModel({ region: 'eastus', deployment: 'chat' });
const docs: PromptPassage[] = [
  'Travel must be booked through the corporate portal. Economy class is the default for flights under six hours.',
  'Employees receive 25 days of paid vacation per calendar year. Vacation requests need manager approval two weeks ahead.',
  'Unused vacation days carry over until the end of March of the following year. After that they expire.',
].map((content, i) => ({ id: `doc${i}:0`, content, tokens: countTokens(content) }));

function grounded(question: string, passages = docs): ChatRequest {
  const p = assemblePrompt({ question, passages, budget: { maxPromptTokens: 4_000 }, countTokens });
  return { messages: p.messages, passages: p.passages };
}

describe('LocalChatModel', () => {
  it('answers from the relevant passages with correct [n] citations, and says it is local', async () => {
    const req = grounded('How many vacation days do employees get per year?');
    const out = await model.complete(req);
    expect(out.model).toEqual({ region: 'eastus', deployment: 'chat', model: LOCAL_MODEL_NAME, local: true });
    expect(out.text).toContain('Employees receive 25 days of paid vacation per calendar year [2].');
    const ids = extractCitations(out.text, req.passages ?? []);
    expect(ids[0]).toBe('doc1:0');
    expect(ids).not.toContain('doc0:0'); // the travel passage is not cited
    // Every cited sentence is really in the passage it cites.
    for (const m of out.text.matchAll(/([^.[\]]+?) \[(\d+)\]\./g)) {
      const p = req.passages?.find((x) => x.citation === Number(m[2]));
      expect(p?.content).toContain((m[1] ?? '').trim());
    }
    expect(out.finishReason).toBe('stop');
  });

  it('is deterministic', async () => {
    const req = grounded('Do unused vacation days carry over?');
    const a = await model.complete(req);
    const b = await new LocalChatModel({ region: 'eastus', deployment: 'chat' }).complete(req);
    expect(b).toEqual(a);
  });

  it('says the documents do not contain it, citing nothing, when no passage is relevant', async () => {
    for (const req of [grounded('What is the parking policy for electric scooters?'), grounded('Anything?', [])]) {
      const out = await model.complete(req);
      expect(out.text).toBe(NOT_IN_DOCUMENTS);
      expect(extractCitations(out.text, req.passages ?? [])).toEqual([]);
    }
  });

  it('counts tokens with the o200k tokenizer', async () => {
    const req = grounded('How many vacation days?');
    const out = await model.complete(req);
    expect(out.usage.completionTokens).toBe(countTokens(out.text));
    expect(out.usage.promptTokens).toBe(req.messages.reduce((n, m) => n + 4 + countTokens(m.content), 3));
    expect(out.usage.totalTokens).toBe(out.usage.promptTokens + out.usage.completionTokens);
  });

  it('streams word groups that add up to the answer, then done', async () => {
    const req = grounded('Do unused vacation days carry over?');
    const events: ChatStreamEvent[] = [];
    for await (const e of model.stream(req)) events.push(e);
    const done = events.at(-1);
    if (done?.type !== 'done') throw new Error('no done');
    const deltas = events.slice(0, -1);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((e) => e.type === 'delta')).toBe(true);
    expect(deltas.map((e) => (e.type === 'delta' ? e.text : '')).join('')).toBe(done.completion.text);
    expect(done.completion).toEqual(await model.complete(req));
  });

  it('cuts the answer at maxTokens', async () => {
    const out = await model.complete({ ...grounded('How many vacation days?'), maxTokens: 5 });
    expect(countTokens(out.text)).toBeLessThanOrEqual(5);
    expect(out.finishReason).toBe('length');
  });

  it('replies in persona, deterministically, to a conversation without passages', async () => {
    const convo: ChatRequest = {
      messages: [
        { role: 'system', content: 'You are Dana, a customer considering a contract renewal.' },
        { role: 'user', content: 'Our new pricing includes premium support at no extra cost.' },
      ],
    };
    const a = await model.complete(convo);
    expect(a.text).toMatch(/premium|pricing|support/);
    expect(a.text).not.toMatch(/\[\d+\]/);
    expect(await model.complete(convo)).toEqual(a);
    expect(a.model.local).toBe(true);
  });
});
