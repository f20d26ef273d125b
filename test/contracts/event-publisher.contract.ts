/**
 * The EventPublisher contract: every adapter (local SQLite bus, Azure Service Bus over a
 * stateful fake namespace, later a live namespace) runs these same cases.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/domain/errors';
import type { EventPublisher, OutgoingMessage } from '../../src/ports/event-publisher';

/** What a subscriber with a TrueFilter saw. */
export interface Delivered {
  messageId: string;
  body: unknown;
  applicationProperties: Record<string, unknown>;
  subject: string | undefined;
  contentType: string | undefined;
}

export interface PublisherHarness {
  publisher: EventPublisher;
  /** An existing topic. */
  topic: string;
  /** Everything delivered to the topic so far (consumed: a second call returns only newer ones). */
  drain(): Promise<Delivered[]>;
  cleanup(): Promise<void>;
}

const message = (id: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  messageId: id,
  body: { schema: 1, op: 'upsert', documentId: id, version: 1, nested: { ok: true, list: [1, 'two', null] } },
  applicationProperties: { targetRegion: 'us', tier: 'kb', attempt: 2, urgent: false, none: null },
  subject: 'upsert',
  contentType: 'application/json',
  ...extra,
});

export function runEventPublisherContract(name: string, createHarness: () => Promise<PublisherHarness>): void {
  describe(`EventPublisher contract: ${name}`, () => {
    let h: PublisherHarness;
    beforeEach(async () => {
      h = await createHarness();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('delivers id, body, application properties, subject and content type unchanged', async () => {
      await h.publisher.publish(h.topic, message('doc-1'));
      expect(await h.drain()).toEqual([
        {
          messageId: 'doc-1',
          body: message('doc-1').body,
          applicationProperties: message('doc-1').applicationProperties,
          subject: 'upsert',
          contentType: 'application/json',
        },
      ]);
    });

    it('leaves unset optional fields unset', async () => {
      await h.publisher.publish(h.topic, { messageId: 'bare', body: 'text' });
      const [d] = await h.drain();
      expect(d?.subject).toBeUndefined();
      expect(d?.contentType).toBeUndefined();
      expect(d?.applicationProperties).toEqual({});
      expect(d?.body).toBe('text');
    });

    it('publishBatch delivers all in order; an empty batch is a no-op', async () => {
      await h.publisher.publishBatch(h.topic, []);
      await h.publisher.publishBatch(h.topic, [message('a'), message('b'), message('c')]);
      expect((await h.drain()).map((d) => d.messageId)).toEqual(['a', 'b', 'c']);
    });

    it('drops a duplicate messageId (accepted, not delivered twice)', async () => {
      await h.publisher.publish(h.topic, message('dup'));
      await h.publisher.publish(h.topic, message('dup', { body: 'changed' }));
      const got = await h.drain();
      expect(got.map((d) => d.messageId)).toEqual(['dup']);
      expect(got[0]?.body).toEqual(message('dup').body);
    });

    it('refuses a topic that does not exist with not_found (it never creates one)', async () => {
      await expect(h.publisher.publish(`${h.topic}-missing`, message('x'))).rejects.toSatisfy((e) => isAppError(e, 'not_found'));
    });

    it('refuses an empty messageId with validation_failed and delivers nothing', async () => {
      await expect(h.publisher.publish(h.topic, message(''))).rejects.toSatisfy((e) => isAppError(e, 'validation_failed'));
      expect(await h.drain()).toEqual([]);
    });
  });
}
