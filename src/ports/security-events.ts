import type { Principal } from '../domain/tenancy';

export interface SecurityEvent {
  kind: 'forbidden';
  principal: Principal;
  requestId: string;
  method: string;
  route: string;
  requiredRoles: string[];
}

/** Where refused requests are recorded (403s, in the caller's own tenant). */
export interface SecurityEventSink {
  /** Records one refusal. Must not throw: a failure to record is logged, never shown to the caller. */
  record(event: SecurityEvent): Promise<void>;
}
