/** Structured logging. Every entry is one JSON object; context fields travel with child loggers. */
export interface LogFields {
  requestId?: string;
  tenantId?: string;
  region?: string;
  boundary?: string;
  [field: string]: unknown;
}

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose entries all carry `fields` (e.g. the request id and tenant). */
  child(fields: LogFields): Logger;
}
