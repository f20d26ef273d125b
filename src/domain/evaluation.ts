/**
 * Evaluations: what a criterion verdict is, how a model's JSON verdict is validated, how the
 * overall score is computed, and the LOCAL EVALUATOR — a deterministic heuristic used when
 * the reasoning deployment is the local stand-in. It is not a language model and says so in
 * every rationale ("local heuristic: …").
 *
 * Local heuristics (scores in [0, 1]; "terms" = lower-cased content words, stop words out,
 * light suffix stripping):
 * - `groundedness` (rag): the share of the answer's sentences that are supported by one
 *   context passage — a sentence is supported when at least half of its terms (≥ 1) occur in
 *   a single passage. Citation markers like `[2]` are ignored. No sentences → 0.
 * - `relevance` (rag): the share of the question's terms that the answer contains.
 * - `citation-accuracy` (rag): the share of the answer's citation markers `[n]` whose passage
 *   n (1-based, in the order given) supports the sentence carrying it. No citation → 0.
 * - `open-questions` (transcript): open questions the trainee asked (turns with a `?` whose
 *   question starts with what/how/why/tell/describe/walk/which/where/when/who/could you
 *   tell…), min(1, count / target) (target default 3).
 * - `keyword-coverage` (transcript): distinct rubric keywords found in the trainee's turns,
 *   min(1, found / target) (target default 2).
 */
import { z } from 'zod';
import type { Criterion, Rubric } from './coaching';
import { termsOf } from './terms';

export type EvaluationStatus = 'running' | 'completed' | 'failed';

export interface CriterionVerdict {
  id: string;
  score: number;
  rationale: string;
  /** Present (true) when the criterion could not be evaluated; score is then 0. */
  failed?: true;
}

export interface EvaluationResult {
  overall: number;
  criteria: CriterionVerdict[];
}

/** What is evaluated: a RAG answer or a role-play transcript. */
export type EvaluationSubject =
  | { kind: 'rag'; question: string; answer: string; contexts: string[] }
  | { kind: 'transcript'; transcript: { role: string; content: string }[] };

/** A verdict as the judge model must return it. */
export const modelVerdictSchema = z.object({ score: z.number().min(0).max(1), rationale: z.string().min(1).max(2000) }).strict();

/**
 * Parses a model's verdict: one JSON object `{score: 0..1, rationale}` and nothing else.
 * @returns the verdict, or the reason it is invalid.
 */
export function parseModelVerdict(text: string): { ok: true; score: number; rationale: string } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text.trim());
  } catch {
    return { ok: false, reason: 'the output is not JSON' };
  }
  const parsed = modelVerdictSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      reason: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    };
  }
  return { ok: true, score: parsed.data.score, rationale: parsed.data.rationale };
}

/** The judge prompt for one criterion (system + user), asking for a JSON verdict. */
export function judgePrompt(rubric: Rubric, criterion: Criterion, subject: EvaluationSubject): { system: string; user: string } {
  const system =
    `You are an evaluator. Assess ONE criterion of the rubric "${rubric.title}": ${criterion.title} — ${criterion.description}\n` +
    'Answer with a single JSON object and nothing else: {"score": <number from 0 to 1>, "rationale": "<one or two sentences>"}.';
  let user: string;
  if (subject.kind === 'rag') {
    const contexts = subject.contexts.map((c, i) => `[${i + 1}] ${c}`).join('\n');
    user = `Question: ${subject.question}\n\nContext passages:\n${contexts}\n\nAnswer to evaluate:\n${subject.answer}`;
  } else {
    user = `Transcript (user = the trainee):\n${subject.transcript.map((t) => `${t.role}: ${t.content}`).join('\n')}`;
  }
  return { system, user };
}

/** Weighted mean of the criteria that did not fail, rounded to 3 decimals; undefined when all failed. */
export function overallOf(
  verdicts: readonly { id: string; score: number; failed?: boolean }[],
  weights: Readonly<Record<string, number>>,
): number | undefined {
  let sum = 0;
  let total = 0;
  for (const v of verdicts) {
    if (v.failed) continue;
    const w = weights[v.id] ?? 1;
    sum += w * v.score;
    total += w;
  }
  if (total === 0) return undefined;
  return Math.round((sum / total) * 1000) / 1000;
}

// ------------------------------------------------------------------ local evaluator

export function sentencesOf(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => termsOf(s.replace(/\[\d+\]/g, '')).length > 0);
}

function supports(passage: ReadonlySet<string>, sentence: string): boolean {
  const terms = [...new Set(termsOf(sentence.replace(/\[\d+\]/g, '')))];
  if (terms.length === 0) return false;
  const hits = terms.filter((t) => passage.has(t)).length;
  return hits >= Math.max(1, Math.ceil(terms.length / 2));
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
const LOCAL = 'local heuristic';

function groundedness(answer: string, contexts: readonly string[]): { score: number; rationale: string } {
  const passages = contexts.map((c) => new Set(termsOf(c)));
  const sentences = sentencesOf(answer);
  if (sentences.length === 0) return { score: 0, rationale: `${LOCAL}: the answer has no sentences to check.` };
  const supported = sentences.filter((s) => passages.some((p) => supports(p, s))).length;
  return {
    score: round(supported / sentences.length),
    rationale: `${LOCAL}: ${supported} of ${sentences.length} answer sentences are supported by a context passage (at least half of their terms occur in one passage).`,
  };
}

function relevance(question: string, answer: string): { score: number; rationale: string } {
  const q = [...new Set(termsOf(question))];
  if (q.length === 0) return { score: 0, rationale: `${LOCAL}: the question has no content terms.` };
  const a = new Set(termsOf(answer));
  const hit = q.filter((t) => a.has(t)).length;
  return { score: round(hit / q.length), rationale: `${LOCAL}: the answer uses ${hit} of the question's ${q.length} terms.` };
}

function citationAccuracy(answer: string, contexts: readonly string[]): { score: number; rationale: string } {
  const passages = contexts.map((c) => new Set(termsOf(c)));
  let cited = 0;
  let correct = 0;
  for (const sentence of answer.split(/(?<=[.!?])\s+|\n+/)) {
    for (const m of sentence.matchAll(/\[(\d+)\]/g)) {
      cited += 1;
      const p = passages[Number(m[1]) - 1];
      if (p && supports(p, sentence)) correct += 1;
    }
  }
  if (cited === 0) return { score: 0, rationale: `${LOCAL}: the answer cites no passage.` };
  return {
    score: round(correct / cited),
    rationale: `${LOCAL}: ${correct} of ${cited} citations point at a passage that supports their sentence.`,
  };
}

const OPEN_START =
  /^(?:so,?\s+|and\s+|okay,?\s+)?(?:what|how|why|which|where|when|who|tell|describe|walk|could you (?:tell|describe|walk|share|explain)|can you (?:tell|describe|walk|share|explain))\b/i;

function openQuestions(turns: readonly string[], target: number): { score: number; rationale: string } {
  let count = 0;
  for (const turn of turns) {
    for (const q of turn.split(/(?<=[.!?])\s+/)) if (q.trim().endsWith('?') && OPEN_START.test(q.trim())) count += 1;
  }
  return {
    score: round(Math.min(1, count / target)),
    rationale: `${LOCAL}: the trainee asked ${count} open question(s); ${target} make a full score.`,
  };
}

function keywordCoverage(
  turns: readonly string[],
  keywords: readonly string[],
  target: number,
): { score: number; rationale: string } {
  const text = ` ${turns
    .join(' ')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}'\s-]+/gu, ' ')
    .replace(/\s+/g, ' ')} `;
  const found = keywords.filter((k) => text.includes(` ${k.toLowerCase()} `) || text.includes(` ${k.toLowerCase()}`));
  return {
    score: round(Math.min(1, found.length / target)),
    rationale: `${LOCAL}: the trainee used ${found.length} of the rubric's cue phrases${found.length ? ` (${found.slice(0, 5).join(', ')})` : ''}; ${target} make a full score.`,
  };
}

/** Scores one criterion with the local heuristic it declares (see the file comment). */
export function localVerdict(criterion: Criterion, subject: EvaluationSubject): CriterionVerdict {
  const h = criterion.local;
  let out: { score: number; rationale: string };
  if (subject.kind === 'rag') {
    switch (h.heuristic) {
      case 'groundedness':
        out = groundedness(subject.answer, subject.contexts);
        break;
      case 'relevance':
        out = relevance(subject.question, subject.answer);
        break;
      case 'citation-accuracy':
        out = citationAccuracy(subject.answer, subject.contexts);
        break;
      default:
        return {
          id: criterion.id,
          score: 0,
          rationale: `${LOCAL}: ${h.heuristic} does not apply to a RAG answer.`,
          failed: true,
        };
    }
  } else {
    const turns = subject.transcript.filter((t) => t.role === 'user').map((t) => t.content);
    switch (h.heuristic) {
      case 'open-questions':
        out = openQuestions(turns, h.target ?? 3);
        break;
      case 'keyword-coverage':
        out = keywordCoverage(turns, h.keywords ?? [], h.target ?? 2);
        break;
      default:
        return {
          id: criterion.id,
          score: 0,
          rationale: `${LOCAL}: ${h.heuristic} does not apply to a transcript.`,
          failed: true,
        };
    }
  }
  return { id: criterion.id, ...out };
}
