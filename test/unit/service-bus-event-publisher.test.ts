import { ServiceBusClient, ServiceBusError, type ServiceBusErrorCode, type ServiceBusMessage } from '@azure/service-bus';
import { describe, expect, it } from 'vitest';
import { type SenderLike, ServiceBusEventPublisher } from '../../src/adapters/azure/service-bus-event-publisher';
import { AppError, type ErrorCode } from '../../src/domain/errors';

/** Records what it is asked to send; fails with the queued errors first. */
class RecordingSender implements SenderLike {
  readonly sent: (ServiceBusMessage | ServiceBusMessage[])[] = [];
  readonly failures: unknown[] = [];
  closed = 0;
  constructor(readonly topic: string) {}
  async sendMessages(messages: ServiceBusMessage | ServiceBusMessage[]): Promise<void> {
    if (this.failures.length) throw this.failures.shift();
    this.sent.push(messages);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

function setup() {
  const senders: RecordingSender[] = [];
  const publisher = new ServiceBusEventPublisher((topic) => {
    const s = new RecordingSender(topic);
    senders.push(s);
    return s;
  });
  return { publisher, senders };
}

const event = {
  messageId: 'upsert:doc-1@3',
  body: { schema: 1, op: 'upsert', documentId: 'doc-1', version: 3, targetRegion: 'us' },
  applicationProperties: { targetRegion: 'us', tier: 'upload' },
  subject: 'upsert',
  contentType: 'application/json',
  timeToLiveMs: 3_600_000,
};

describe('ServiceBusEventPublisher', () => {
  it('maps every field onto ServiceBusMessage exactly', async () => {
    const { publisher, senders } = setup();
    await publisher.publish('index-sync', event);
    expect(senders.map((s) => s.topic)).toEqual(['index-sync']);
    expect(senders[0]?.sent).toEqual([
      {
        messageId: 'upsert:doc-1@3',
        body: { schema: 1, op: 'upsert', documentId: 'doc-1', version: 3, targetRegion: 'us' },
        applicationProperties: { targetRegion: 'us', tier: 'upload' },
        subject: 'upsert',
        contentType: 'application/json',
        timeToLive: 3_600_000,
      },
    ]);
  });

  it('leaves out what is not set', async () => {
    const { publisher, senders } = setup();
    await publisher.publish('index-sync', { messageId: 'm', body: 'x' });
    expect(senders[0]?.sent).toStrictEqual([{ messageId: 'm', body: 'x' }]);
  });

  it('sends a batch in one call, one sender per topic, reused; close closes them', async () => {
    const { publisher, senders } = setup();
    await publisher.publishBatch('index-sync', [event, { ...event, messageId: 'delete:doc-2@1' }]);
    await publisher.publish('index-sync', event);
    await publisher.publishBatch('index-sync', []);
    await publisher.publish('other', event);
    expect(senders.map((s) => s.topic)).toEqual(['index-sync', 'other']);
    const first = senders[0]?.sent[0] as ServiceBusMessage[];
    expect(first.map((m) => m.messageId)).toEqual(['upsert:doc-1@3', 'delete:doc-2@1']);
    expect(senders[0]?.sent).toHaveLength(2);
    await publisher.close();
    expect(senders.map((s) => s.closed)).toEqual([1, 1]);
  });

  it('refuses an empty messageId without calling the SDK', async () => {
    const { publisher, senders } = setup();
    await expect(publisher.publish('index-sync', { ...event, messageId: '' })).rejects.toMatchObject({
      code: 'validation_failed',
    });
    expect(senders[0]?.sent ?? []).toEqual([]);
  });

  const cases: [ServiceBusErrorCode, ErrorCode, number | undefined][] = [
    ['ServiceBusy', 'unavailable', 10],
    ['ServiceTimeout', 'unavailable', 2],
    ['ServiceCommunicationProblem', 'unavailable', 2],
    ['QuotaExceeded', 'unavailable', 30],
    ['MessagingEntityDisabled', 'unavailable', 30],
    ['MessageSizeExceeded', 'payload_too_large', undefined],
    ['MessagingEntityNotFound', 'not_found', undefined],
    ['UnauthorizedAccess', 'internal', undefined],
    ['GeneralError', 'unavailable', 2], // the SDK marks it retryable
  ];
  it.each(cases)('translates ServiceBusError %s into AppError %s', async (sbCode, code, retryAfter) => {
    const { publisher, senders } = setup();
    await publisher.publish('index-sync', event); // creates the sender
    const sdkError = new ServiceBusError('boom', sbCode);
    senders[0]?.failures.push(sdkError);
    const err = await publisher.publish('index-sync', event).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code, retryAfterSeconds: retryAfter, cause: sdkError });
  });

  it('treats a retryable non-Service-Bus error as unavailable and anything else as internal', async () => {
    const { publisher, senders } = setup();
    await publisher.publish('index-sync', event);
    senders[0]?.failures.push(
      Object.assign(new Error('socket hang up'), { retryable: true }),
      new TypeError('bad'),
      Object.assign(new ServiceBusError('fatal', 'GeneralError'), { retryable: false }),
    );
    await expect(publisher.publish('index-sync', event)).rejects.toMatchObject({ code: 'unavailable', retryAfterSeconds: 2 });
    await expect(publisher.publishBatch('index-sync', [event])).rejects.toMatchObject({ code: 'internal' });
    await expect(publisher.publish('index-sync', event)).rejects.toMatchObject({ code: 'internal' });
  });

  it('fromClient creates senders from the client (no network until sending)', async () => {
    const client = new ServiceBusClient(
      'Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5',
    );
    const publisher = ServiceBusEventPublisher.fromClient(client);
    expect(publisher).toBeInstanceOf(ServiceBusEventPublisher);
    await publisher.close();
    await client.close();
  });
});
