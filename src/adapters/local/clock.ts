import type { Clock } from '../../ports/clock';

/**
 * The process-wide time source a host may install (devhost does under MERIDIAN_CLOCK=virtual),
 * so the app, the bus, the change feed and durable timers move together without src/
 * importing devhost.
 */
export const CLOCK_HOOK = Symbol.for('meridian.clock');

export interface ClockHook {
  now(): number;
}

/** Reads the installed hook on every call; the system clock when none is installed. */
export class LocalClock implements Clock {
  now(): number {
    const hook = (globalThis as Record<symbol, unknown>)[CLOCK_HOOK] as ClockHook | undefined;
    return hook ? hook.now() : Date.now();
  }
}

/** A clock for tests: time moves only when told to. */
export class ManualClock implements Clock {
  constructor(private current: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}
