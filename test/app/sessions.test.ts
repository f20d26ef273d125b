import { describe, expect, it } from 'vitest';
import { createSessions } from '../../src/app/sessions';
import type { Principal } from '../../src/domain/tenancy';
import type { Orchestrations } from '../../src/ports/orchestrations';
import { testDeps } from '../helpers/deps';

const alice = { tenantId: 'tenant-acme-corp', userId: 'alice', roles: [] } as unknown as Principal;
const orchestrations: Orchestrations = { start: async () => undefined, raise: async () => undefined };
let n = 0;
const ctx = () => ({ requestId: `r${++n}`, invocationId: `i${n}` });

describe('session messages', () => {
  it('concurrent messages under the cap are all answered and stored, each with its own exchange number', async () => {
    const deps = testDeps();
    const sessions = createSessions(deps);
    const { sessionId } = await sessions.start(alice, { scenario: 'sales-discovery' }, ctx(), orchestrations);
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) =>
        sessions.message(alice, sessionId, `Question ${i}: what is your budget?`, ctx(), orchestrations),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const exchanges = results
      .map((r) => (r as PromiseFulfilledResult<{ exchange: number }>).value.exchange)
      .sort((a, b) => a - b);
    expect(exchanges).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const view = await sessions.get(alice, sessionId);
    expect(view.exchanges).toBe(25);
    await deps.documents.close();
  });
});
