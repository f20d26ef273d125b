import { ServiceBusError, type ServiceBusMessage } from '@azure/service-bus';
import { type SenderLike, ServiceBusEventPublisher } from '../../src/adapters/azure/service-bus-event-publisher';
import { LocalServiceBus } from '../../src/adapters/local/service-bus';
import { openBus, tempDir, VirtualClock } from '../helpers/local-bus';
import { type Delivered, runEventPublisherContract } from './event-publisher.contract';

runEventPublisherContract('LocalServiceBus', async () => {
  const tmp = tempDir();
  const bus: LocalServiceBus = openBus(tmp.dir, new VirtualClock());
  await bus.ensureTopic('events', { duplicateDetectionWindowMs: 600_000, defaultTtlMs: 3_600_000 });
  await bus.ensureSubscription('events', 'all', {
    maxDeliveryCount: 5,
    lockDurationMs: 60_000,
    deadLetteringOnMessageExpiration: true,
    deadLetteringOnFilterEvaluationExceptions: true,
  });
  return {
    publisher: bus,
    topic: 'events',
    async drain() {
      const got = await bus.receive('events', 'all', { maxMessages: 1000 });
      for (const m of got) await bus.complete(m.lockToken);
      return got.map(({ messageId, body, applicationProperties, subject, contentType }) => ({
        messageId,
        body,
        applicationProperties,
        subject,
        contentType,
      }));
    },
    async cleanup() {
      await bus.close();
      tmp.cleanup();
    },
  };
});

/**
 * A stateful stand-in for a Service Bus namespace behind the SDK's sender: known topics,
 * duplicate detection by messageId, and the SDK's own error for a missing entity.
 */
class FakeNamespace {
  readonly delivered = new Map<string, Delivered[]>();
  private readonly seen = new Set<string>();
  constructor(topics: string[]) {
    for (const t of topics) this.delivered.set(t, []);
  }
  sender(topic: string): SenderLike {
    return {
      sendMessages: async (messages: ServiceBusMessage | ServiceBusMessage[]) => {
        const queue = this.delivered.get(topic);
        if (!queue) throw new ServiceBusError(`The messaging entity '${topic}' could not be found.`, 'MessagingEntityNotFound');
        for (const m of Array.isArray(messages) ? messages : [messages]) {
          const key = `${topic}\u0000${String(m.messageId)}`;
          if (this.seen.has(key)) continue;
          this.seen.add(key);
          queue.push({
            messageId: String(m.messageId),
            body: structuredClone(m.body) as unknown,
            applicationProperties: { ...(m.applicationProperties ?? {}) },
            subject: m.subject,
            contentType: m.contentType,
          });
        }
      },
      close: async () => undefined,
    };
  }
}

runEventPublisherContract('ServiceBusEventPublisher (fake namespace)', async () => {
  const ns = new FakeNamespace(['events']);
  const publisher = new ServiceBusEventPublisher((topic) => ns.sender(topic));
  return {
    publisher,
    topic: 'events',
    async drain() {
      const queue = ns.delivered.get('events') ?? [];
      return queue.splice(0, queue.length);
    },
    async cleanup() {
      await publisher.close();
    },
  };
});
