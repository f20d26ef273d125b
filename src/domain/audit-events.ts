/**
 * What each audited change means: the source container's document → actor, action, resource.
 * Pure. `undefined` = not audited (internal bookkeeping, tenant-free rows).
 */

/** The containers whose change feeds the audit log follows (each trigger has its own lease prefix). */
export const AUDITED_CONTAINERS = ['conversations', 'documents', 'usage', 'evaluations', 'sessions', 'security-events'] as const;
export type AuditedContainer = (typeof AUDITED_CONTAINERS)[number];

export interface AuditRecord {
  tenantId: string;
  actor: string;
  action: string;
  resource: string;
  /** The region the change happened in when the document says so (else the appending app's). */
  region?: string;
  detail?: Record<string, string | number | boolean | string[]>;
}

const SYSTEM = 'system';

function str(doc: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = doc[k];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return undefined;
}

function statusAction(kind: string, doc: Record<string, unknown>): string {
  const status = str(doc, 'status');
  return status && /^[a-z_]{1,32}$/.test(status) ? `${kind}.${status}` : `${kind}.write`;
}

export function describeChange(container: string, doc: Record<string, unknown>): AuditRecord | undefined {
  const tenantId = str(doc, 'tenantId');
  const id = str(doc, 'id');
  // `_shared` rows (documents indexed for everyone) belong to no tenant's chain.
  if (!tenantId || !id || tenantId.startsWith('_')) return undefined;
  const actor = str(doc, 'userId', 'ownerId', 'createdBy') ?? SYSTEM;
  const region = str(doc, 'region');
  const base = { tenantId, actor, ...(region ? { region } : {}) };
  switch (container) {
    case 'usage': {
      // Only budget threshold crossings: usage events and ledger rows are counted, not audited.
      if (doc['type'] !== 'budget-threshold') return undefined;
      const percent = typeof doc['thresholdPercent'] === 'number' ? doc['thresholdPercent'] : 0;
      const detail: AuditRecord['detail'] = { thresholdPercent: percent };
      if (typeof doc['limitTokens'] === 'number') detail['limitTokens'] = doc['limitTokens'];
      if (typeof doc['totalTokens'] === 'number') detail['totalTokens'] = doc['totalTokens'];
      return {
        ...base,
        actor: SYSTEM,
        action: `budget.threshold_${percent}`,
        resource: `usage/${str(doc, 'period') ?? ''}`,
        detail,
      };
    }
    case 'security-events': {
      const detail: AuditRecord['detail'] = {};
      const requestId = str(doc, 'requestId');
      if (requestId) detail['requestId'] = requestId;
      if (Array.isArray(doc['requiredRoles']))
        detail['requiredRoles'] = doc['requiredRoles'].filter((r): r is string => typeof r === 'string');
      return {
        ...base,
        action: `security.${str(doc, 'kind') ?? 'event'}`,
        resource: `${str(doc, 'method') ?? ''} ${str(doc, 'route') ?? ''}`.trim(),
        detail,
      };
    }
    case 'conversations':
      return { ...base, action: 'conversation.write', resource: `conversations/${id}` };
    case 'documents':
      return { ...base, action: statusAction('document', doc), resource: `documents/${str(doc, 'documentId') ?? id}` };
    case 'sessions':
      return { ...base, action: statusAction('session', doc), resource: `sessions/${str(doc, 'sessionId') ?? id}` };
    case 'evaluations':
      return { ...base, action: statusAction('evaluation', doc), resource: `evaluations/${str(doc, 'evaluationId') ?? id}` };
    default:
      return { ...base, action: `${container}.write`, resource: `${container}/${id}` };
  }
}
