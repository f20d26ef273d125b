/** Content words for the local, deterministic heuristics (the extractive answerer and the evaluator). */

export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have how i if in into is it its me my ' +
    'no not of on or our please should so than that the their them then there these they this those to us was ' +
    'we were what when where which who whom why will with would you your about any all also get got just more most much ' +
    'some such only own same too very'
  ).split(' '),
);

/** Lower-cased content words with light suffix stripping ("policies" → "policy", "days" → "day"). */
export function termsOf(text: string, stopWords: ReadonlySet<string> = STOP_WORDS): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    if (stopWords.has(raw) || (raw.length < 2 && !/\d/.test(raw))) continue;
    out.push(stem(raw));
  }
  return out;
}

function stem(w: string): string {
  if (w.length > 4 && w.endsWith('ies')) return `${w.slice(0, -3)}y`;
  if (w.length > 5 && w.endsWith('ing')) return w.slice(0, -3);
  if (w.length > 4 && w.endsWith('ed')) return w.slice(0, -2);
  if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}
