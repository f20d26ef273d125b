import { describe, expect, it } from 'vitest';
import { compileRoute, Router } from '../../devhost/routes';

function router() {
  const r = new Router<string>();
  r.add('documents', ['GET', 'POST'], 'docs');
  r.add('documents/{documentId}', ['GET', 'DELETE'], 'doc');
  r.add('sessions/{sessionId}/messages', ['POST'], 'messages');
  r.add('sessions/{sessionId}/end', ['POST'], 'end');
  r.add('items/{id:int}', ['GET'], 'item-int');
  r.add('items/{name}', ['GET'], 'item-name');
  r.add('files/{*path}', ['GET'], 'files');
  r.add('hello/{name?}', ['GET'], 'hello');
  r.add('runtime/{id:guid}', ['GET'], 'guid');
  return r;
}

describe('devhost route templates', () => {
  it('matches literal and parameter segments, case-insensitive literals, decoded params', () => {
    const m = router().match('GET', '/Documents/doc%20one');
    expect(m).toMatchObject({ kind: 'match', target: 'doc', params: { documentId: 'doc one' } });
    expect(router().match('POST', 'sessions/s-1/messages')).toMatchObject({ target: 'messages', params: { sessionId: 's-1' } });
  });

  it('prefers constrained parameters over plain ones and literals over both', () => {
    expect(router().match('GET', 'items/42')).toMatchObject({ target: 'item-int', params: { id: '42' } });
    expect(router().match('GET', 'items/forty')).toMatchObject({ target: 'item-name', params: { name: 'forty' } });
    expect(router().match('GET', 'documents')).toMatchObject({ target: 'docs' });
  });

  it('supports optional and catch-all parameters', () => {
    expect(router().match('GET', 'hello')).toMatchObject({ target: 'hello', params: {} });
    expect(router().match('GET', 'hello/ann')).toMatchObject({ target: 'hello', params: { name: 'ann' } });
    expect(router().match('GET', 'files/a/b/c.txt')).toMatchObject({ target: 'files', params: { path: 'a/b/c.txt' } });
    expect(router().match('GET', 'files')).toMatchObject({ target: 'files', params: {} });
  });

  it('applies guid constraints', () => {
    expect(router().match('GET', 'runtime/0f8fad5b-d9cb-469f-a165-70867728950e')).toMatchObject({ target: 'guid' });
    expect(router().match('GET', 'runtime/nope').kind).toBe('not_found');
  });

  it('answers 405 with the allowed methods when only the method is wrong, 404 otherwise', () => {
    expect(router().match('PUT', 'documents/x')).toEqual({ kind: 'method_not_allowed', allow: ['DELETE', 'GET'] });
    expect(router().match('GET', 'sessions/s/messages')).toEqual({ kind: 'method_not_allowed', allow: ['POST'] });
    expect(router().match('GET', 'nothing/here').kind).toBe('not_found');
    expect(router().match('GET', 'documents/a/b').kind).toBe('not_found');
    expect(router().match('GET', 'documents/%E0%A4%A').kind).toBe('not_found');
  });

  it('treats HEAD as GET', () => {
    expect(router().match('HEAD', 'documents')).toMatchObject({ target: 'docs' });
  });

  it('rejects templates it cannot honour', () => {
    expect(() => compileRoute('a/{*rest}/b', ['GET'], 0)).toThrow(/catch-all must be last/);
    expect(() => compileRoute('a/{x?}/b', ['GET'], 0)).toThrow(/only trailing parameters/);
    expect(() => compileRoute('a/{x:regex(.*)}', ['GET'], 0)).toThrow(/unsupported constraint/);
    expect(() => compileRoute('a/pre{x}', ['GET'], 0)).toThrow(/unsupported segment/);
  });
});
