import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/app/hashing';
import { createChainVerifier, entryHash, GENESIS_HASH } from '../../src/domain/audit-chain';
import { canonicalJson } from '../../src/domain/canonical-json';

function chain(n: number) {
  const entries: Record<string, unknown>[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e: Record<string, unknown> = { id: `e${seq}`, seq, action: 'a', actor: 'u', prevHash: prev };
    e['hash'] = entryHash(prev, e, sha256Hex);
    prev = e['hash'] as string;
    entries.push(e);
  }
  return { entries, head: { seq: n, hash: prev } };
}

function verify(entries: Record<string, unknown>[], head: { seq: number; hash: string } | undefined) {
  const v = createChainVerifier(sha256Hex);
  for (const e of entries) if (!v.push(e)) break;
  return v.finish(head);
}

describe('canonical JSON', () => {
  it('does not depend on key order and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null }, u: undefined })).toBe('{"a":{"c":null,"d":[1,"x"]},"b":1}');
    expect(canonicalJson({ a: { c: null, d: [1, 'x'] }, b: 1 })).toBe(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } }));
  });
  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(TypeError);
    expect(() => canonicalJson(() => 1)).toThrow(TypeError);
  });
});

describe('audit hash chain', () => {
  it('hash = SHA-256(prevHash ‖ canonical entry)', () => {
    const e = { seq: 1, action: 'x', prevHash: GENESIS_HASH, _etag: 'ignored' };
    expect(entryHash(GENESIS_HASH, e, sha256Hex)).toBe(
      sha256Hex(GENESIS_HASH + '{"action":"x","prevHash":"' + GENESIS_HASH + '","seq":1}'),
    );
  });

  it('verifies an intact chain and an empty one', () => {
    const { entries, head } = chain(5);
    expect(verify(entries, head)).toEqual({ valid: true, count: 5, head });
    expect(verify([], undefined)).toEqual({ valid: true, count: 0, head: { seq: 0, hash: GENESIS_HASH } });
  });

  it('names the edited entry', () => {
    const { entries, head } = chain(5);
    (entries[2] as Record<string, unknown>)['actor'] = 'mallory';
    expect(verify(entries, head)).toEqual({ valid: false, brokenAt: 3, reason: 'hash_mismatch' });
  });

  it('names an edit that re-hashed the entry by its broken successor link', () => {
    const { entries, head } = chain(5);
    const e = entries[1] as Record<string, unknown>;
    e['actor'] = 'mallory';
    e['hash'] = entryHash(e['prevHash'] as string, e, sha256Hex);
    expect(verify(entries, head)).toEqual({ valid: false, brokenAt: 3, reason: 'prev_hash_mismatch' });
  });

  it('names the first deleted entry', () => {
    const { entries, head } = chain(5);
    entries.splice(1, 2);
    expect(verify(entries, head)).toEqual({ valid: false, brokenAt: 2, reason: 'missing_entry' });
  });

  it('detects truncation through the head', () => {
    const { entries, head } = chain(5);
    expect(verify(entries.slice(0, 3), head)).toEqual({ valid: false, brokenAt: 4, reason: 'head_mismatch' });
    expect(verify([], head)).toEqual({ valid: false, brokenAt: 1, reason: 'head_mismatch' });
  });
});
