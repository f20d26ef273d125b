/**
 * The store-backed security-event sink: every 403 becomes one `security-events` document in
 * the caller's own tenant partition (API.md "Auth"), expiring after the container's TTL
 * (30 days); the audit trigger on that container chains it into the tenant's audit log.
 * 401 and 421 never get here: they are logged and counted only (functions/lib/http.ts).
 */
import { ensureError } from '../domain/errors';
import type { Clock } from '../ports/clock';
import type { DocumentStore, Item } from '../ports/document-store';
import type { Logger } from '../ports/logger';
import type { SecurityEvent, SecurityEventSink } from '../ports/security-events';

export const SECURITY_EVENTS_CONTAINER = 'security-events';

export interface SecurityEventDocument extends Item {
  tenantId: string;
  type: 'security-event';
  kind: SecurityEvent['kind'];
  userId: string;
  requestId: string;
  method: string;
  route: string;
  requiredRoles: string[];
  boundary: string;
  region: string;
  at: string;
  /** Seconds; the container's default too, set explicitly so the document says so. */
  ttl: number;
}

export function createStoredSecurityEventSink(deps: {
  documents: DocumentStore;
  clock: Clock;
  logger: Logger;
  config: { boundary: string; region: string };
  ttlSeconds: number;
  newId: () => string;
}): SecurityEventSink {
  return {
    async record(event) {
      deps.logger.warn('request refused: missing role', {
        requestId: event.requestId,
        tenantId: event.principal.tenantId,
        userId: event.principal.userId,
        route: event.route,
        method: event.method,
        requiredRoles: event.requiredRoles,
      });
      const doc: SecurityEventDocument = {
        id: deps.newId(),
        // The caller's own tenant, always: never a tenant named in the request.
        tenantId: event.principal.tenantId,
        type: 'security-event',
        kind: event.kind,
        userId: event.principal.userId,
        requestId: event.requestId,
        method: event.method,
        route: event.route,
        requiredRoles: event.requiredRoles,
        boundary: deps.config.boundary,
        region: deps.config.region,
        at: new Date(deps.clock.now()).toISOString(),
        ttl: deps.ttlSeconds,
      };
      try {
        await deps.documents.create(SECURITY_EVENTS_CONTAINER, doc);
      } catch (err) {
        // Must not throw (port contract): the refusal itself still reaches the caller.
        deps.logger.error('could not store a security event', { err: ensureError(err).message, requestId: event.requestId });
      }
    },
  };
}
