import { describe, expect, it } from 'vitest';
import { toProblem } from '../../src/app/problem';
import { AppError, statusOf, type ErrorCode } from '../../src/domain/errors';

describe('toProblem', () => {
  it('maps every code to its status with an RFC 9457 body', () => {
    for (const code of Object.keys(statusOf) as ErrorCode[]) {
      const p = toProblem(new AppError(code, `detail of ${code}`), 'req-1');
      expect(p.status).toBe(statusOf[code]);
      expect(p.headers['content-type']).toBe('application/problem+json');
      expect(p.body).toMatchObject({
        status: statusOf[code],
        code,
        detail: `detail of ${code}`,
        type: `https://meridian.dev/problems/${code}`,
      });
      expect(typeof p.body.title).toBe('string');
    }
  });

  it('adds Retry-After (whole seconds, at least 1) to 429s', () => {
    expect(toProblem(new AppError('rate_limited', 'slow down', { retryAfterSeconds: 2.2 }), 'r').headers['retry-after']).toBe(
      '3',
    );
    expect(toProblem(new AppError('budget_exceeded', 'spent'), 'r').headers['retry-after']).toBe('1');
  });

  it('keeps extensions but never lets them overwrite the standard members', () => {
    const p = toProblem(
      new AppError('misdirected_boundary', 'elsewhere', { extensions: { boundary: 'eu', status: 200, code: 'x' } }),
      'r',
    );
    expect(p.body).toMatchObject({ boundary: 'eu', status: 421, code: 'misdirected_boundary' });
  });

  it('turns unknown errors into 500 internal without leaking anything', () => {
    const p = toProblem(new Error('connection string AccountKey=SECRET at /srv/app.js:12'), 'req-42');
    expect(p.status).toBe(500);
    expect(p.body.code).toBe('internal');
    expect(JSON.stringify(p.body)).not.toMatch(/SECRET|app\.js|stack/);
    expect(p.body.detail).toContain('req-42');
    expect(toProblem('a string', 'r').status).toBe(500);
  });
});
