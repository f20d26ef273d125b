import { ensureError } from '../domain/errors';
import type { Clock } from '../ports/clock';
import type { LogFields, Logger } from '../ports/logger';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof LEVELS;

/** Serialises errors (message, code, stack, cause chain) so they survive JSON. */
function serialise(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const e = ensureError(value) as Error & { code?: unknown };
    return {
      name: e.name,
      message: e.message,
      ...(e.code !== undefined ? { code: e.code } : {}),
      stack: e.stack,
      ...(e.cause !== undefined && depth < 3 ? { cause: serialise(e.cause, depth + 1) } : {}),
    };
  }
  return value;
}

/** A JSON-lines logger writing to `sink` (stdout in the composition root). */
export function createJsonLogger(options: {
  sink: (line: string) => void;
  clock: Clock;
  level?: LogLevel;
  fields?: LogFields;
}): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const make = (base: LogFields): Logger => {
    const write = (level: LogLevel, message: string, fields?: LogFields) => {
      if (LEVELS[level] < min) return;
      const entry: Record<string, unknown> = { time: new Date(options.clock.now()).toISOString(), level, message, ...base };
      if (fields) for (const [k, v] of Object.entries(fields)) entry[k] = serialise(v);
      let line: string;
      try {
        line = JSON.stringify(entry);
      } catch {
        line = JSON.stringify({ time: entry['time'], level, message, note: 'fields were not serialisable' });
      }
      options.sink(line);
    };
    return {
      debug: (m, f) => write('debug', m, f),
      info: (m, f) => write('info', m, f),
      warn: (m, f) => write('warn', m, f),
      error: (m, f) => write('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(options.fields ?? {});
}
