/**
 * MERIDIAN_CLOCK=virtual: time moves only through `POST /_devhost/clock/advance {ms}`.
 * The front door persists the current time in `<data>/global/clock` and sends every boundary
 * process the absolute time, so processes never drift apart, even across restarts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLOCK_HOOK, type ClockHook } from '../src/adapters/local/clock';

export type ClockListener = (now: number) => void;

export interface HostClock extends ClockHook {
  readonly virtual: boolean;
  /** Called after every virtual move (never for the system clock); used to fire due timers. */
  onChange(listener: ClockListener): () => void;
}

export class VirtualClock implements HostClock {
  readonly virtual = true;
  #now: number;
  #listeners = new Set<ClockListener>();

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves to an absolute time; never backwards. */
  setTo(ms: number): number {
    if (ms > this.#now) {
      this.#now = ms;
      for (const l of this.#listeners) l(this.#now);
    }
    return this.#now;
  }

  advance(ms: number): number {
    return this.setTo(this.#now + ms);
  }

  onChange(listener: ClockListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export class SystemClock implements HostClock {
  readonly virtual = false;
  now(): number {
    return Date.now();
  }
  onChange(): () => void {
    return () => undefined;
  }
}

export function clockFile(dataDir: string): string {
  return path.join(dataDir, 'global', 'clock');
}

export function readPersistedClock(dataDir: string): number | undefined {
  try {
    const value = Number(readFileSync(clockFile(dataDir), 'utf8').trim());
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

export function persistClock(dataDir: string, now: number): void {
  mkdirSync(path.dirname(clockFile(dataDir)), { recursive: true });
  writeFileSync(clockFile(dataDir), String(now));
}

/** Creates the process clock for a mode and installs it as the app's clock hook. */
export function installHostClock(mode: 'system' | 'virtual', dataDir: string): HostClock {
  const clock: HostClock = mode === 'virtual' ? new VirtualClock(readPersistedClock(dataDir) ?? Date.now()) : new SystemClock();
  (globalThis as Record<symbol, unknown>)[CLOCK_HOOK] = clock;
  return clock;
}
