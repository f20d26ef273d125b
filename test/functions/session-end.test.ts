import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endSession } from '../../functions/sessions';
import { setDepsForTesting } from '../../src/composition';
import { call, testDeps } from '../helpers/deps';
import { bearer } from '../helpers/tokens';

let deps: ReturnType<typeof testDeps>;
beforeAll(() => {
  deps = testDeps();
});
afterAll(async () => {
  setDepsForTesting(undefined);
  await deps.documents.close();
});

describe('POST /api/sessions/{id}/end takes no body (API.md: request "—", unknown fields → 400)', () => {
  const end = async (body: string, contentType = 'application/json') => {
    const sessionId = `${deps.config.region}-0123456789abcdef0123456789abcdef`;
    return call(endSession, {
      method: 'POST',
      url: `http://127.0.0.1/api/sessions/${sessionId}/end`,
      params: { sessionId },
      headers: { authorization: await bearer('tenant-acme-corp', 'alice'), 'content-type': contentType },
      body,
    });
  };

  it.each([
    ['an unknown field', '{"x":1}'],
    ['malformed JSON', '{"reason":"done","force":true'],
    ['an array', '[]'],
    ['null', 'null'],
    ['a string', '"done"'],
  ])('400 validation_failed for %s', async (_what, body) => {
    const res = await end(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ status: 400, code: 'validation_failed' });
  });

  it('400 for a body that is not JSON at all', async () => {
    expect((await end('please end', 'text/plain')).status).toBe(400);
  });
  // No body and {} are accepted: test/e2e/sessions.e2e.test.ts ends sessions both ways.
});
