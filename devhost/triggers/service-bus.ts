/**
 * `serviceBusTrigger` functions (topic subscriptions, including `<sub>/$DeadLetterQueue`) on the
 * local bus: one pump per function; complete on success, abandon on throw (so the delivery
 * count rises and the bus dead-letters at maxDeliveryCount); cardinality 'many' gets batches.
 */
import type { LocalServiceBus, ReceivedMessage, SubscriptionPump } from '../../src/adapters/local/service-bus';
import { startSubscriptionPump } from '../../src/adapters/local/service-bus';
import type { Clock } from '../../src/ports/clock';
import type { FunctionHost, FunctionInfo } from '../host';
import type { RpcTypedData } from '../functions-core';

function dataOf(body: unknown): RpcTypedData {
  if (typeof body === 'string') return { string: body };
  if (Buffer.isBuffer(body)) return { bytes: body };
  return { json: JSON.stringify(body ?? null) };
}

function metadataOf(m: ReceivedMessage): Record<string, unknown> {
  return {
    MessageId: m.messageId,
    DeliveryCount: m.deliveryCount,
    SequenceNumber: m.sequenceNumber,
    EnqueuedTimeUtc: m.enqueuedTimeUtc.toISOString(),
    ExpiresAtUtc: m.expiresAtUtc.toISOString(),
    LockToken: m.lockToken,
    ContentType: m.contentType ?? null,
    Subject: m.subject ?? null,
    Label: m.subject ?? null,
    ApplicationProperties: m.applicationProperties ?? {},
    UserProperties: m.applicationProperties ?? {},
    // Like the Service Bus extension: no DeadLetterReason key of its own; a dead-lettered
    // message carries it (and DeadLetterErrorDescription) among its application properties.
  };
}

function toTriggerMetadata(meta: Record<string, unknown>): Record<string, RpcTypedData> {
  const out: Record<string, RpcTypedData> = {};
  for (const [k, v] of Object.entries(meta)) {
    out[k] = typeof v === 'string' ? { string: v } : { json: JSON.stringify(v) };
  }
  return out;
}

export function startServiceBusTriggers(options: {
  host: FunctionHost;
  bus: LocalServiceBus;
  clock: Clock;
  log: (message: string, fields?: Record<string, unknown>) => void;
}): { stop(): Promise<void> } {
  const pumps: SubscriptionPump[] = [];
  for (const fn of options.host.functions().filter((f) => f.trigger.type === 'serviceBusTrigger')) {
    const topic = fn.trigger['topicName'];
    const subscription = fn.trigger['subscriptionName'];
    if (typeof topic !== 'string' || typeof subscription !== 'string') {
      throw new Error(`${fn.name}: devhost runs topic subscriptions only (topicName and subscriptionName are required)`);
    }
    const many = fn.trigger['cardinality'] === 'many';
    const onError = (err: Error, ctx: { phase: string; messages: readonly ReceivedMessage[] }) =>
      options.log(`serviceBusTrigger ${fn.name}: ${ctx.phase} failed`, {
        error: err.message,
        messageIds: ctx.messages.map((m) => m.messageId),
        deliveryCounts: ctx.messages.map((m) => m.deliveryCount),
      });
    pumps.push(
      startSubscriptionPump({
        bus: options.bus,
        topic,
        subscription,
        clock: options.clock,
        onError,
        ...(many
          ? { batchHandler: (messages: ReceivedMessage[]) => invokeMany(options.host, fn, messages) }
          : { handler: (message: ReceivedMessage) => invokeOne(options.host, fn, message) }),
      }),
    );
  }
  return { stop: async () => void (await Promise.all(pumps.map((p) => p.stop()))) };
}

async function invokeOne(host: FunctionHost, fn: FunctionInfo, m: ReceivedMessage): Promise<void> {
  await host.invoke(fn.name, {
    inputData: [{ name: fn.triggerName, data: dataOf(m.body) }],
    triggerMetadata: toTriggerMetadata(metadataOf(m)),
  });
}

async function invokeMany(host: FunctionHost, fn: FunctionInfo, messages: ReceivedMessage[]): Promise<void> {
  const metas = messages.map(metadataOf);
  const arrays: Record<string, unknown> = {};
  for (const key of [
    'MessageId',
    'DeliveryCount',
    'SequenceNumber',
    'EnqueuedTimeUtc',
    'ContentType',
    'Subject',
    'ApplicationProperties',
  ]) {
    arrays[`${key}Array`] = metas.map((m) => m[key]);
  }
  arrays['UserPropertiesArray'] = arrays['ApplicationPropertiesArray'];
  await host.invoke(fn.name, {
    inputData: [{ name: fn.triggerName, data: { json: JSON.stringify(messages.map((m) => m.body)) } }],
    triggerMetadata: toTriggerMetadata(arrays),
  });
}
