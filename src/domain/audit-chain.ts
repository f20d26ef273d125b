/**
 * The audit log's hash chain. Pure: the hash function (SHA-256, hex) is passed in.
 *
 * Per tenant, entries carry `seq` = 1, 2, 3, … and
 *   `hash = H(prevHash ‖ canonicalJson(entry without hash and system fields))`
 * with `prevHash` of entry 1 = {@link GENESIS_HASH}. A chain head `(seq, hash)` is written in
 * the same transaction as every append, so deleting the newest entries (truncation) is
 * detected too: the head then names a longer chain than the one stored.
 */
import { canonicalJson } from './canonical-json';

export type HashFn = (text: string) => string;

export const GENESIS_HASH = '0'.repeat(64);

/** What an audit entry records (API.md `/api/audit` items, plus where it came from). */
export interface AuditEntry {
  id: string;
  tenantId: string;
  type: 'audit-entry';
  seq: number;
  /** Append time, ISO 8601 UTC (fixed width, so it sorts as text). */
  at: string;
  actor: string;
  action: string;
  resource: string;
  boundary: string;
  region: string;
  /** The change that caused the entry; `etag` makes a redelivered change recognisable. */
  source: { container: string; id: string; etag: string };
  detail?: Record<string, string | number | boolean | string[]>;
  prevHash: string;
  hash: string;
}

/** The per-tenant chain head, replaced with If-Match on every append. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** The part of an entry that is hashed: everything but `hash` and store system fields (`_…`). */
export function hashedContent(entry: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entry)) if (k !== 'hash' && !k.startsWith('_')) out[k] = v;
  return out;
}

export function entryHash(prevHash: string, entry: Record<string, unknown>, hash: HashFn): string {
  return hash(prevHash + canonicalJson(hashedContent(entry)));
}

export type BrokenReason =
  /** `seq` is not the next number: an entry was deleted (or one was inserted). */
  | 'missing_entry'
  /** The entry's `prevHash` is not the previous entry's hash. */
  | 'prev_hash_mismatch'
  /** The entry's content does not hash to its `hash`: it was edited. */
  | 'hash_mismatch'
  /** The stored chain ends before (or after) the head: truncated, or the head was edited. */
  | 'head_mismatch';

export type VerifyResult =
  { valid: true; count: number; head: ChainHead } | { valid: false; brokenAt: number; reason: BrokenReason };

/**
 * Verifies a chain fed in `seq` order, page by page. `push` returns false once the chain is
 * broken (further entries are ignored); `finish` compares the end with the stored head.
 */
export function createChainVerifier(hash: HashFn) {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let broken: { brokenAt: number; reason: BrokenReason } | undefined;
  return {
    push(entry: Record<string, unknown>): boolean {
      if (broken) return false;
      const seq = entry['seq'];
      if (seq !== expectedSeq) {
        // A gap names the first missing number; a repeat or a non-number names where it is.
        broken = {
          brokenAt: typeof seq === 'number' && seq > expectedSeq ? expectedSeq : typeof seq === 'number' ? seq : expectedSeq,
          reason: 'missing_entry',
        };
        return false;
      }
      if (entry['prevHash'] !== prevHash) {
        broken = { brokenAt: expectedSeq, reason: 'prev_hash_mismatch' };
        return false;
      }
      const computed = entryHash(prevHash, entry, hash);
      if (entry['hash'] !== computed) {
        broken = { brokenAt: expectedSeq, reason: 'hash_mismatch' };
        return false;
      }
      prevHash = computed;
      expectedSeq++;
      return true;
    },
    finish(head: ChainHead | undefined): VerifyResult {
      if (broken) return { valid: false, ...broken };
      const count = expectedSeq - 1;
      const expected: ChainHead = head ?? { seq: 0, hash: GENESIS_HASH };
      if (expected.seq !== count || expected.hash !== prevHash) {
        return { valid: false, brokenAt: Math.min(expected.seq, count) + 1, reason: 'head_mismatch' };
      }
      return { valid: true, count, head: { seq: count, hash: prevHash } };
    },
  };
}
