/** Coaching sessions (API.md "POST /api/sessions" …) and the activities of `sessionLifecycle`. */
import { app, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { createSessions, MAX_MESSAGE_CHARS } from '../src/app/sessions';
import { getDeps } from '../src/composition';
import type { EndReason } from '../src/domain/coaching';
import { authenticated, json, readJson, readNoBody } from './lib/http';
import { durableClientInput, orchestrationsOf, redirectToHome } from './lib/durable';
import { guardModelCall } from './lib/model-limits';
import './orchestrations/session-lifecycle';
import './orchestrations/evaluation';

const startBody = z.object({ scenario: z.string().min(1).max(64), persona: z.string().min(1).max(64).optional() }).strict();
const messageBody = z.object({ text: z.string().min(1).max(MAX_MESSAGE_CHARS) }).strict();
const noStore = { 'cache-control': 'no-store' };

export const startSession = authenticated({}, async ({ req, deps, principal, requestId, context }) => {
  const body = await readJson(req, startBody);
  const out = await createSessions(deps).start(
    principal,
    body,
    { requestId, invocationId: context.invocationId },
    orchestrationsOf(context),
  );
  return json(201, out, { ...noStore, location: `/api/sessions/${out.sessionId}` });
});

export const sendSessionMessage = authenticated({}, async ({ req, deps, principal, requestId, context }) => {
  const sessionId = req.params['sessionId'] ?? '';
  const redirect = redirectToHome(deps, sessionId, req.url);
  if (redirect) return redirect;
  const body = await readJson(req, messageBody);
  await guardModelCall(deps, principal);
  const out = await createSessions(deps).message(
    principal,
    sessionId,
    body.text,
    { requestId, invocationId: context.invocationId },
    orchestrationsOf(context),
  );
  return json(200, out, noStore);
});

export const endSession = authenticated({}, async ({ req, deps, principal, context }) => {
  const sessionId = req.params['sessionId'] ?? '';
  const redirect = redirectToHome(deps, sessionId, req.url);
  if (redirect) return redirect;
  await readNoBody(req);
  return json(202, await createSessions(deps).end(principal, sessionId, orchestrationsOf(context)), noStore);
});

export const getSession = authenticated({}, async ({ req, deps, principal }) => {
  const sessionId = req.params['sessionId'] ?? '';
  const redirect = redirectToHome(deps, sessionId, req.url);
  if (redirect) return redirect;
  return json(200, await createSessions(deps).get(principal, sessionId), noStore);
});

app.http('startSession', { methods: ['POST'], route: 'sessions', extraInputs: [durableClientInput], handler: startSession });
app.http('getSession', { methods: ['GET'], route: 'sessions/{sessionId}', handler: getSession });
app.http('sendSessionMessage', {
  methods: ['POST'],
  route: 'sessions/{sessionId}/messages',
  extraInputs: [durableClientInput],
  handler: sendSessionMessage,
});
app.http('endSession', {
  methods: ['POST'],
  route: 'sessions/{sessionId}/end',
  extraInputs: [durableClientInput],
  handler: endSession,
});

// ---- activities of sessionLifecycle (ids in, ids and statuses out)
export async function closeSessionActivity(input: unknown, _context: InvocationContext) {
  return createSessions(getDeps()).close(input as { sessionId: string; tenantId: string; reason: EndReason });
}
export async function finishSessionActivity(input: unknown, _context: InvocationContext) {
  return createSessions(getDeps()).finish(input as { sessionId: string; tenantId: string; evaluationId: string });
}
export async function failSessionActivity(input: unknown, _context: InvocationContext) {
  return createSessions(getDeps()).fail(input as { sessionId: string; tenantId: string; error: string });
}
df.app.activity('closeSession', { handler: closeSessionActivity });
df.app.activity('finishSession', { handler: finishSessionActivity });
df.app.activity('failSession', { handler: failSessionActivity });
