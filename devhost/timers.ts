/**
 * Timer triggers on NCRONTAB schedules (six fields, seconds first). croner with
 * `domAndDow: true` gives NCRONTAB's "day-of-month AND day-of-week". Invocations of one timer
 * never overlap; a schedule missed while devhost was down runs once at start with
 * `isPastDue: true` (the host's schedule monitor), and `runOnStartup` runs once at start.
 */
import { Cron } from 'croner';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FunctionHost, FunctionInfo } from './host';
import type { HostClock } from './virtual-clock';

export function resolveSchedule(schedule: string, settings: Record<string, string | undefined>): string {
  const m = /^%([^%]+)%$/.exec(schedule.trim());
  if (!m) return schedule.trim();
  const value = settings[m[1] as string];
  if (!value) throw new Error(`Timer schedule refers to app setting ${m[1]}, which is not set`);
  return value.trim();
}

/** Parses an NCRONTAB expression (6 fields). @throws with the reason when it is not valid. */
export function parseSchedule(expression: string): Cron {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new Error(`NCRONTAB "${expression}" must have 6 fields (second minute hour day month day-of-week)`);
  }
  return new Cron(expression, { domAndDow: true, paused: true, timezone: 'UTC' });
}

/** The next `count` occurrences strictly after `from`. */
export function nextOccurrences(expression: string, from: Date, count: number): Date[] {
  const cron = parseSchedule(expression);
  const out: Date[] = [];
  let cursor: Date | null = from;
  while (out.length < count && cursor) {
    cursor = cron.nextRun(cursor);
    if (cursor) out.push(cursor);
  }
  return out;
}

interface TimerState {
  [functionName: string]: { last?: string; next?: string };
}

export interface RunningTimers {
  stop(): Promise<void>;
  /** For tests and /_devhost: the next due time of each timer. */
  schedule(): { name: string; next: string | undefined }[];
}

export function startTimers(options: {
  host: FunctionHost;
  clock: HostClock;
  stateFile: string;
  settings: Record<string, string | undefined>;
  log: (message: string, fields?: Record<string, unknown>) => void;
}): RunningTimers {
  const { host, clock } = options;
  let state: TimerState = {};
  try {
    state = JSON.parse(readFileSync(options.stateFile, 'utf8')) as TimerState;
  } catch {
    state = {};
  }
  const save = () => {
    mkdirSync(path.dirname(options.stateFile), { recursive: true });
    writeFileSync(options.stateFile, JSON.stringify(state, null, 2));
  };

  const timers = host
    .functions()
    .filter((f) => f.trigger.type === 'timerTrigger')
    .map((fn) => {
      const expression = resolveSchedule(String(fn.trigger['schedule'] ?? ''), options.settings);
      const cron = parseSchedule(expression);
      return { fn, cron, expression, running: false, next: undefined as number | undefined };
    });

  let stopped = false;
  let handle: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<void>>();

  const fire = (t: (typeof timers)[number], isPastDue: boolean, scheduledFor: number) => {
    if (t.running || stopped) return;
    t.running = true;
    const next = t.cron.nextRun(new Date(Math.max(clock.now(), scheduledFor)))?.getTime();
    const payload = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: state[t.fn.name]?.last ?? new Date(0).toISOString(),
        Next: next ? new Date(next).toISOString() : null,
        LastUpdated: new Date(clock.now()).toISOString(),
      },
      IsPastDue: isPastDue,
    };
    const p = invoke(t.fn, payload)
      .then(() => {
        state[t.fn.name] = {
          last: new Date(scheduledFor).toISOString(),
          ...(next ? { next: new Date(next).toISOString() } : {}),
        };
        save();
      })
      .catch((err: unknown) => options.log(`timer ${t.fn.name} failed`, { err: String((err as Error)?.stack ?? err) }))
      .finally(() => {
        t.running = false;
        inFlight.delete(p);
      });
    inFlight.add(p);
  };

  const invoke = (fn: FunctionInfo, payload: unknown) =>
    host.invoke(fn.name, { inputData: [{ name: fn.triggerName, data: { json: JSON.stringify(payload) } }], triggerMetadata: {} });

  const tick = () => {
    if (stopped) return;
    const now = clock.now();
    for (const t of timers) {
      if (t.next !== undefined && t.next <= now) {
        const due = t.next;
        t.next = t.cron.nextRun(new Date(now))?.getTime();
        fire(t, now - due > 60_000, due);
      }
    }
    arm();
  };

  const arm = () => {
    clearTimeout(handle);
    if (stopped || clock.virtual) return;
    const nexts = timers.map((t) => t.next).filter((n): n is number => n !== undefined);
    if (!nexts.length) return;
    const delay = Math.min(Math.max(0, Math.min(...nexts) - clock.now()), 2 ** 31 - 1);
    handle = setTimeout(tick, delay);
    handle.unref();
  };

  const now = clock.now();
  for (const t of timers) {
    const recorded = state[t.fn.name]?.next ? Date.parse(state[t.fn.name]?.next as string) : undefined;
    t.next = t.cron.nextRun(new Date(now))?.getTime();
    if (recorded !== undefined && recorded < now) fire(t, true, recorded);
    else if (t.fn.trigger['runOnStartup'] === true) fire(t, false, now);
  }
  const unsubscribe = clock.onChange(() => tick());
  arm();

  return {
    async stop() {
      stopped = true;
      unsubscribe();
      clearTimeout(handle);
      await Promise.allSettled([...inFlight]);
    },
    schedule: () => timers.map((t) => ({ name: t.fn.name, next: t.next ? new Date(t.next).toISOString() : undefined })),
  };
}
