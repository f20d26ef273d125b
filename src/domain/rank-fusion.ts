/**
 * Reciprocal Rank Fusion, as Azure AI Search fuses the keyword and vector lists of a hybrid
 * query: score(d) = Σ over lists containing d of 1 / (k + rank), rank starting at 1, k = 60.
 * Ties keep the order of first appearance (list order, then rank), so fusion is deterministic.
 */
export const RRF_K = 60;

/** Candidates taken from each list before fusion (Azure's hybrid default is 50 for text). */
export const HYBRID_CANDIDATES = 50;

export function reciprocalRankFusion<T>(lists: readonly (readonly T[])[], k: number = RRF_K): { id: T; score: number }[] {
  const scores = new Map<T, number>();
  for (const list of lists) {
    list.forEach((id, i) => scores.set(id, (scores.get(id) ?? 0) + 1 / (k + i + 1)));
  }
  // Map iteration order is insertion order; a stable sort keeps it for equal scores.
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
}
