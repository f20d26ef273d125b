/**
 * A Date for a deterministic instant (e.g. a durable timer's fire time computed from an
 * orchestration's input and `currentUtcDateTime`). Orchestrator files may not touch the `Date`
 * global (lint), because `new Date()`/`Date.now()` read the wall clock; this only converts.
 */
export function dateAtEpochMs(ms: number): Date {
  if (!Number.isFinite(ms)) throw new RangeError('dateAtEpochMs: not a finite time');
  return new Date(ms);
}
