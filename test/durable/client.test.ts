import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSystem, type TestSystem } from './harness';

let sys: TestSystem;

beforeAll(async () => {
  sys = await startTestSystem();
});

afterAll(async () => {
  await sys?.close();
});

/** Runs a DurableClient operation inside the fixture's HTTP function (the real client, over HTTP). */
async function client(op: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await sys.api('POST', '/api/client', op);
  return res as { status: number; body: Record<string, unknown> };
}

describe('the real DurableClient against devhost', () => {
  it('starts through an HTTP function and links the management URLs at the server origin', async () => {
    const res = await fetch(`${sys.server.url}/api/orchestrators/approval`, { method: 'POST', body: '"ignored"' });
    expect(res.status).toBe(202);
    const links = (await res.json()) as Record<string, string>;
    expect(links['id']).toMatch(/^eastus-[0-9a-f]{32}$/);
    expect(links['statusQueryGetUri']).toBe(
      `${sys.server.url}/runtime/webhooks/durabletask/instances/${links['id']}?taskHub=meridiantest&connection=Storage`,
    );
    expect(res.headers.get('location')).toBe(links['statusQueryGetUri']);
    await sys.waitFor(links['id'] as string, ['Running']);
    const status = await fetch(links['statusQueryGetUri'] as string);
    expect(status.status).toBe(202);
    expect(((await status.json()) as { name: string }).name).toBe('approval');

    const raise = await client({ op: 'raise', instanceId: links['id'], event: 'approve', data: { by: 'client' } });
    expect(raise).toEqual({ status: 200, body: { ok: true } });
    await sys.waitFor(links['id'] as string, ['Completed']);
    const got = await client({ op: 'status', instanceId: links['id'], showHistory: true });
    expect(got.status).toBe(200);
    expect(got.body['runtimeStatus']).toBe('Completed');
    expect(got.body['output']).toEqual({ decision: { by: 'client' } });
    expect(got.body['input']).toBe('ignored');
    expect(Array.isArray(got.body['history'])).toBe(true);
  });

  it('starts with a chosen id, suspends, resumes and terminates', async () => {
    const started = await client({ op: 'startNew', name: 'approval', instanceId: 'client-chosen-1', input: 7 });
    expect(started.body).toEqual({ id: 'client-chosen-1' });
    await sys.waitFor('client-chosen-1', ['Running']);
    expect((await client({ op: 'suspend', instanceId: 'client-chosen-1' })).status).toBe(200);
    await sys.waitFor('client-chosen-1', ['Suspended']);
    await client({ op: 'raise', instanceId: 'client-chosen-1', event: 'approve', data: 'while suspended' });
    await new Promise((r) => setTimeout(r, 50));
    expect(sys.durable.engine.status('client-chosen-1')?.runtimeStatus).toBe('Suspended');
    await client({ op: 'resume', instanceId: 'client-chosen-1' });
    await sys.waitFor('client-chosen-1', ['Completed']);

    await client({ op: 'startNew', name: 'approval', instanceId: 'client-chosen-2' });
    await sys.waitFor('client-chosen-2', ['Running']);
    expect(await client({ op: 'terminate', instanceId: 'client-chosen-2', reason: 'enough' })).toEqual({
      status: 200,
      body: { ok: true },
    });
    const terminated = await sys.waitFor('client-chosen-2', ['Terminated']);
    expect(terminated.output).toBe('enough');
    const missing = await client({ op: 'raise', instanceId: 'no-such-instance', event: 'x' });
    expect(missing.status).toBe(500);
    expect(missing.body['error']).toContain("No instance with ID 'no-such-instance' found.");
    const purge = await client({ op: 'purge', instanceId: 'client-chosen-2' });
    expect(purge.body).toEqual({ instancesDeleted: 1 });
  });

  it('lists instances by status across continuation-token pages', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 130; i++) ids.push(sys.durable.engine.startNew('approval', `page-${String(i).padStart(3, '0')}`, i));
    await sys.until(() => ids.every((id) => sys.durable.engine.status(id)?.runtimeStatus === 'Running'), 'all running');
    const list = await client({ op: 'list', runtimeStatus: ['Running'] });
    expect(list.status).toBe(200);
    const listed = (list.body as unknown as { instanceId: string }[]).map((s) => s.instanceId);
    expect(listed.length).toBeGreaterThanOrEqual(130);
    expect(new Set(listed).size).toBe(listed.length);
    for (const id of ids) expect(listed).toContain(id);
    const firstPage = await fetch(`${sys.server.url}/runtime/webhooks/durabletask/instances/?runtimeStatus=Running`);
    expect(((await firstPage.json()) as unknown[]).length).toBe(100);
    expect(firstPage.headers.get('x-ms-continuation-token')).toBeTruthy();
  });
});
