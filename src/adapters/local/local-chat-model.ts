/**
 * The local stand-in for a chat deployment: a deterministic extractive answerer. It is not
 * a language model and never pretends to be one — every answer says so in its metadata
 * (`model: {model: 'meridian-local-extractive', local: true}`).
 *
 * Grounded questions (`request.passages` given, even empty): the question's terms (lower-
 * cased, light suffix stripping, stop words dropped) are matched against each passage; a
 * passage is relevant when it shares at least a third of them (at least one). From the up to
 * three most relevant passages it takes each one's best sentence (most shared terms, the
 * earliest on a tie) and cites it `[n]`. With nothing relevant it answers that the documents
 * do not contain the answer, citing nothing.
 *
 * Conversations without passages (coaching sessions: a persona system prompt and a
 * transcript): a persona reply from fixed templates, chosen by a hash of the last user turn
 * and the turn number, naming the longest content word of that turn (stop words and common
 * verbs left out; the later word on a tie) — so the same
 * conversation always gets the same reply and different turns get varied ones.
 *
 * Tokens are counted with gpt-tokenizer's o200k_base (the gpt-4o family's encoding): prompt
 * = 3 + Σ(4 + tokens(content)) as OpenAI's chat format counts, completion = tokens(answer).
 */
import { countTokens, decode, encode } from 'gpt-tokenizer/encoding/o200k_base';
import {
  usageOf,
  type ChatCompletion,
  type ChatMessage,
  type ChatRequest,
  type ChatStreamEvent,
  type CitablePassage,
  type FinishReason,
  type ModelInfo,
} from '../../domain/chat';
import type { ChatModel } from '../../ports/chat-model';
import { STOP_WORDS, termsOf as sharedTermsOf } from '../../domain/terms';

export const LOCAL_MODEL_NAME = 'meridian-local-extractive';
export const NOT_IN_DOCUMENTS = 'The documents available to me do not contain an answer to this question.';
const WORDS_PER_DELTA = 3;
const MAX_PASSAGES = 3;
const MAX_SENTENCE_CHARS = 400;

/** The answerer also ignores "tell" ("tell me about…"). */
const ANSWER_STOP_WORDS: ReadonlySet<string> = new Set([...STOP_WORDS, 'tell']);

/** Lower-cased content words with light suffix stripping ("policies" → "policy", "days" → "day"). */
export function termsOf(text: string): string[] {
  return sharedTermsOf(text, ANSWER_STOP_WORDS);
}

function sentencesOf(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim().replace(/\s+/g, ' '))
    .filter((s) => s.length > 0);
}

function overlap(terms: ReadonlySet<string>, text: string): number {
  const seen = new Set(termsOf(text).filter((t) => terms.has(t)));
  return seen.size;
}

/** FNV-1a, 32 bits: a stable, platform-independent choice among templates. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function lastUserMessage(messages: readonly ChatMessage[]): string | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as ChatMessage;
    if (m.role === 'user') return m.content;
  }
  return undefined;
}

/** The question of a grounded prompt: the text after the last "Question:" of the last user message. */
function questionOf(messages: readonly ChatMessage[]): string {
  const last = lastUserMessage(messages) ?? '';
  const at = last.lastIndexOf('Question:');
  return at >= 0 ? last.slice(at + 'Question:'.length).trim() : last;
}

export function composeGroundedAnswer(question: string, passages: readonly CitablePassage[]): string {
  const terms = new Set(termsOf(question));
  if (terms.size === 0 || passages.length === 0) return NOT_IN_DOCUMENTS;
  const needed = Math.max(1, Math.ceil(terms.size / 3));
  const ranked = passages
    .map((p) => ({ p, score: overlap(terms, p.content) }))
    .filter((r) => r.score >= needed)
    .sort((a, b) => b.score - a.score || a.p.citation - b.p.citation)
    .slice(0, MAX_PASSAGES);
  const parts: string[] = [];
  const used = new Set<string>();
  for (const { p } of ranked) {
    let best: { s: string; score: number } | undefined;
    for (const s of sentencesOf(p.content)) {
      const score = overlap(terms, s);
      if (score > 0 && (!best || score > best.score)) best = { s, score };
    }
    if (!best || used.has(best.s)) continue;
    used.add(best.s);
    const sentence = best.s.length > MAX_SENTENCE_CHARS ? `${best.s.slice(0, MAX_SENTENCE_CHARS).trimEnd()}…` : best.s;
    parts.push(`${sentence.replace(/[.!?]+$/, '')} [${p.citation}].`);
  }
  return parts.length > 0 ? parts.join(' ') : NOT_IN_DOCUMENTS;
}

const COMMON_VERBS = new Set(
  (
    'include includes included including offer offers provide provides make makes want wants need needs think know ' +
    'going say says said see seen look looks like likes help helps understand understood believe'
  ).split(' '),
);

const PERSONA_TEMPLATES = [
  "That's a fair point about {term}. Can you tell me more about how that would work for me?",
  "I'm not sure about {term} yet. What would you suggest as a next step?",
  'I hear you on {term}. What makes you confident that is the right approach?',
  'Okay, {term} matters to me. How would this compare with what I have today?',
];

export function composePersonaReply(messages: readonly ChatMessage[]): string {
  const last = lastUserMessage(messages);
  if (last === undefined || last.trim() === '') return 'Hello. What would you like to talk about?';
  const words = (last.match(/[\p{L}\p{N}'-]+/gu) ?? []).filter(
    (w) => !STOP_WORDS.has(w.toLowerCase()) && !COMMON_VERBS.has(w.toLowerCase()) && w.length > 2,
  );
  // The longest remaining word, the later one on a tie (objects tend to come last).
  const term = words.reduce<string | undefined>(
    (best, w) => (best === undefined || w.length >= best.length ? w : best),
    undefined,
  );
  if (term === undefined) return 'Could you say a little more about that?';
  const turn = messages.filter((m) => m.role === 'user').length;
  const template = PERSONA_TEMPLATES[fnv1a(`${turn}:${last}`) % PERSONA_TEMPLATES.length] as string;
  return template.replace('{term}', term.toLowerCase());
}

export function countPromptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((n, m) => n + 4 + countTokens(m.content), 3);
}

export interface LocalChatModelOptions {
  region: string;
  deployment: string;
}

export class LocalChatModel implements ChatModel {
  readonly info: ModelInfo;

  constructor(options: LocalChatModelOptions) {
    this.info = { region: options.region, deployment: options.deployment, model: LOCAL_MODEL_NAME, local: true };
  }

  async complete(request: ChatRequest): Promise<ChatCompletion> {
    request.signal?.throwIfAborted();
    return this.answer(request);
  }

  async *stream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    request.signal?.throwIfAborted();
    const completion = this.answer(request);
    const pieces = completion.text.match(/\S+\s*/g) ?? [];
    for (let i = 0; i < pieces.length; i += WORDS_PER_DELTA) {
      request.signal?.throwIfAborted();
      yield { type: 'delta', text: pieces.slice(i, i + WORDS_PER_DELTA).join(''), model: this.info };
    }
    yield { type: 'done', completion };
  }

  private answer(request: ChatRequest): ChatCompletion {
    let text =
      request.passages !== undefined
        ? composeGroundedAnswer(questionOf(request.messages), request.passages)
        : composePersonaReply(request.messages);
    if (request.responseFormat === 'json') text = JSON.stringify({ answer: text });
    let finishReason: FinishReason = 'stop';
    if (request.maxTokens !== undefined) {
      const tokens = encode(text);
      if (tokens.length > request.maxTokens) {
        text = decode(tokens.slice(0, Math.max(0, request.maxTokens)));
        finishReason = 'length';
      }
    }
    return {
      text,
      usage: usageOf(countPromptTokens(request.messages), countTokens(text)),
      model: { ...this.info },
      finishReason,
    };
  }
}
