import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFrontDoor, type RunningFrontDoor } from '../../devhost/front-door';
import { FunctionHost } from '../../devhost/host';
import { startHttpServer, type RunningHttpServer } from '../../devhost/http-server';
import { mintDevToken } from '../helpers/tokens';

const APP = path.resolve(__dirname, '../fixtures/stream-app');
const LIMIT = 256 * 1024;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Sends `size` bytes through a fresh connection, with a content-length or chunked, and
 * resolves with the response. A write-side error after the response arrived is the client's
 * own business (the server may stop reading once it has answered); one before it fails.
 */
function post(url: string, token: string, size: number, chunked: boolean, requestId: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {
      authorization: `Bearer ${token}`,
      'content-type': 'text/plain',
      'x-request-id': requestId,
    };
    if (!chunked) headers['content-length'] = size;
    const req = http.request(`${url}/api/echo/big`, { method: 'POST', headers, agent: false });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() });
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const piece = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < size && !req.destroyed) {
        const n = Math.min(piece.length, size - sent);
        sent += n;
        if (!req.write(n === piece.length ? piece : piece.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}

describe('front door relaying an oversized body', () => {
  const host = new FunctionHost({ appDir: APP });
  let boundary: RunningHttpServer;
  let frontDoor: RunningFrontDoor;
  let token: string;
  beforeAll(async () => {
    await host.load();
    boundary = await startHttpServer({ host, routePrefix: 'api', maxBodyBytes: LIMIT, region: 'testregion' });
    frontDoor = await startFrontDoor({
      port: 0,
      backends: new Map([['us', boundary.url]]),
      tenants: [{ tenantId: 'tenant-acme-corp', boundary: 'us' }],
      operatorTenantId: 'meridian-operators',
      knownBoundaries: ['us'],
    });
    token = await mintDevToken({ tenant: 'tenant-acme-corp', user: 'alice' });
  });
  afterAll(async () => {
    await frontDoor?.close();
    await boundary?.close();
  });

  for (const chunked of [false, true]) {
    it(`always relays the boundary's 413 with request id and region (${chunked ? 'chunked' : 'content-length'})`, async () => {
      for (let i = 0; i < 20; i++) {
        const rid = `big-${chunked ? 'c' : 'l'}-${i}`;
        const res = await post(frontDoor.url, token, 64 * LIMIT, chunked, rid);
        expect({ i, status: res.status }).toEqual({ i, status: 413 });
        expect(res.headers['x-request-id']).toBe(rid);
        expect(res.headers['x-meridian-region']).toBe('testregion');
        expect(JSON.parse(res.body)).toMatchObject({ status: 413, code: 'payload_too_large' });
      }
    });
  }

  it('stamps request id and region on its own 502 when the boundary does not answer', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const door = await startFrontDoor({
      port: 0,
      backends: new Map([['us', `http://127.0.0.1:${port}`]]),
      tenants: [{ tenantId: 'tenant-acme-corp', boundary: 'us' }],
      operatorTenantId: 'meridian-operators',
      knownBoundaries: ['us'],
    });
    try {
      const res = await post(door.url, token, 10, false, 'gone-1');
      expect(res.status).toBe(502);
      expect(res.headers['x-request-id']).toBe('gone-1');
      expect(res.headers['x-meridian-region']).toBe('front-door');
      expect(JSON.parse(res.body)).toMatchObject({ status: 502, code: 'unavailable' });
    } finally {
      await door.close();
    }
  });

  it('still serves a body under the limit on the same front door', async () => {
    const res = await post(frontDoor.url, token, LIMIT - 1, false, 'small-1');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ rest: 'big', rid: 'small-1' });
    expect((JSON.parse(res.body) as { body: string }).body).toHaveLength(LIMIT - 1);
  });
});
