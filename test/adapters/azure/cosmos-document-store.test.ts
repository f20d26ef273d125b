import { describe, expect, it } from 'vitest';
import { toCosmosSql, translateCosmosError } from '../../../src/adapters/azure/cosmos-document-store';

describe('translateCosmosError', () => {
  it('maps statuses to AppError codes', () => {
    expect(translateCosmosError({ code: 404 }, 'x').code).toBe('not_found');
    expect(translateCosmosError({ code: 409 }, 'x').code).toBe('conflict');
    expect(translateCosmosError({ code: 412 }, 'x').code).toBe('precondition_failed');
    expect(translateCosmosError({ code: 413 }, 'x').code).toBe('payload_too_large');
    expect(translateCosmosError({ code: 503 }, 'x').code).toBe('unavailable');
    expect(translateCosmosError({ code: 401 }, 'x').code).toBe('internal');
    expect(translateCosmosError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'x').code).toBe(
      'unavailable',
    );
  });

  it('carries Retry-After from retryAfterInMs or the header, rounded up to seconds', () => {
    const fromField = translateCosmosError({ code: 429, retryAfterInMs: 1500 }, 'x');
    expect([fromField.code, fromField.retryAfterSeconds]).toEqual(['rate_limited', 2]);
    const fromHeader = translateCosmosError({ code: 429, headers: { 'x-ms-retry-after-ms': '4200' } }, 'x');
    expect(fromHeader.retryAfterSeconds).toBe(5);
  });

  it('keeps the SDK error as the cause', () => {
    const sdk = { code: 409, message: 'Entity with the specified id already exists' };
    expect(translateCosmosError(sdk, 'create').cause).toBe(sdk);
  });
});

describe('toCosmosSql', () => {
  it('puts the partition in the text and every value in parameters', () => {
    const sql = toCosmosSql('tenantId', "t'1", {
      where: [
        { path: '/n', op: '>=', value: 3 },
        { path: '/name', op: 'in', value: ['a', "b' OR 1=1"] },
        { path: '/meta/kind', op: 'startsWith', value: 'x' },
        { path: '/opt', op: 'notDefined' },
      ],
      orderBy: { path: '/n', direction: 'desc' },
    });
    expect(sql.query).toBe(
      'SELECT * FROM c WHERE c["tenantId"] = @pk AND c["n"] >= @p0 AND c["name"] IN (@p1, @p2) AND STARTSWITH(c["meta"]["kind"], @p3) AND NOT IS_DEFINED(c["opt"]) ORDER BY c["n"] DESC',
    );
    expect(sql.parameters).toEqual([
      { name: '@pk', value: "t'1" },
      { name: '@p0', value: 3 },
      { name: '@p1', value: 'a' },
      { name: '@p2', value: "b' OR 1=1" },
      { name: '@p3', value: 'x' },
    ]);
  });
});
