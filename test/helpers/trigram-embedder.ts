import type { Embedder } from '../../src/ports/embedder';

/** Deterministic 512-dim unit vectors from character trigrams: fast, and similar texts stay similar. */
export const trigramEmbedder: Embedder = {
  dimensions: 512,
  model: 'test-trigrams',
  check: async () => undefined,
  embed: async (texts) =>
    texts.map((t) => {
      const v = new Float32Array(512);
      const s = t.toLowerCase();
      for (let i = 0; i + 3 <= s.length; i++)
        v[(s.charCodeAt(i) * 31 * 31 + s.charCodeAt(i + 1) * 31 + s.charCodeAt(i + 2)) % 512]! += 1;
      const norm = Math.hypot(...v) || 1;
      return v.map((x) => x / norm);
    }),
};
