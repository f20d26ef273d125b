import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ensureTopology,
  FILTER_EVALUATION_EXCEPTION,
  LocalServiceBus,
  MAX_DELIVERY_COUNT_EXCEEDED,
  TTL_EXPIRED_EXCEPTION,
} from '../../src/adapters/local/service-bus';
import { isAppError } from '../../src/domain/errors';
import type { OutgoingMessage } from '../../src/ports/event-publisher';
import { openBus, tempDir, topology, VirtualClock } from '../helpers/local-bus';
import { appErrorOf } from '../helpers/errors';

const TOPIC = topology.topic.name;
const SUBS = topology.subscriptions.map((s) => s.name);
const US = ['meridian-eastus-indexer', 'meridian-westus2-indexer'];
const EU = ['meridian-westeurope-indexer', 'meridian-northeurope-indexer'];
const LOCK_MS = 60_000;

function msg(id: string, targetRegion: string | number | null = 'us', extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    messageId: id,
    body: { schema: 1, op: 'upsert', documentId: id, version: 1, targetRegion },
    applicationProperties: targetRegion === null ? { tier: 'upload' } : { targetRegion, tier: 'upload' },
    subject: 'upsert',
    contentType: 'application/json',
    ...extra,
  };
}

describe('LocalServiceBus', () => {
  let clock: VirtualClock;
  let bus: LocalServiceBus;
  let tmp: ReturnType<typeof tempDir>;

  beforeEach(async () => {
    tmp = tempDir();
    clock = new VirtualClock();
    bus = openBus(tmp.dir, clock);
    await ensureTopology(bus, topology);
  });
  afterEach(async () => {
    await bus.close();
    tmp.cleanup();
  });

  async function ids(sub: string, deadLetter = false): Promise<string[]> {
    const got = await bus.receive(TOPIC, sub, { maxMessages: 100, deadLetter });
    return got.map((m) => m.messageId).sort();
  }

  it('fans out by the topology filters: us → both us indexers, all → all four', async () => {
    await bus.publish(TOPIC, msg('only-us', 'us'));
    await bus.publish(TOPIC, msg('only-eu', 'eu'));
    await bus.publish(TOPIC, msg('shared', 'all'));
    await bus.publish(TOPIC, msg('nowhere', 'apac'));
    await bus.publish(TOPIC, msg('no-region', null));
    for (const s of US) expect(await ids(s)).toEqual(['only-us', 'shared']);
    for (const s of EU) expect(await ids(s)).toEqual(['only-eu', 'shared']);
  });

  it('delivers the message as sent', async () => {
    await bus.publish(TOPIC, msg('m1', 'us'));
    const [m] = await bus.receive(TOPIC, US[0] as string);
    expect(m).toMatchObject({
      messageId: 'm1',
      body: { schema: 1, op: 'upsert', documentId: 'm1', version: 1, targetRegion: 'us' },
      applicationProperties: { targetRegion: 'us', tier: 'upload' },
      subject: 'upsert',
      contentType: 'application/json',
      deliveryCount: 1,
    });
    expect(m?.enqueuedTimeUtc.getTime()).toBe(clock.now());
    expect(m?.expiresAtUtc.getTime()).toBe(clock.now() + topology.topic.defaultMessageTimeToLiveSeconds * 1000);
    expect(m?.lockedUntilUtc.getTime()).toBe(clock.now() + LOCK_MS);
  });

  it('drops a duplicate messageId inside the window and accepts it again after', async () => {
    const windowMs = topology.topic.duplicateDetectionWindowSeconds * 1000;
    await bus.publish(TOPIC, msg('dup', 'us'));
    clock.advance(windowMs - 1);
    await bus.publish(TOPIC, msg('dup', 'us'));
    await bus.publishBatch(TOPIC, [msg('dup', 'us'), msg('other', 'us')]);
    expect((await bus.stats(TOPIC, US[0] as string)).active).toBe(2);
    clock.advance(1);
    await bus.publish(TOPIC, msg('dup', 'us'));
    expect((await bus.stats(TOPIC, US[0] as string)).active).toBe(3);
  });

  it('dead-letters a poison message after exactly maxDeliveryCount deliveries', async () => {
    const sub = US[0] as string;
    const max = topology.subscriptions[0]?.maxDeliveryCount as number;
    await bus.publish(TOPIC, msg('poison', 'us'));
    const counts: number[] = [];
    for (let i = 0; i < max + 3; i++) {
      const [m] = await bus.receive(TOPIC, sub);
      if (!m) break;
      counts.push(m.deliveryCount);
      await bus.abandon(m.lockToken);
    }
    expect(counts).toEqual(Array.from({ length: max }, (_, i) => i + 1));
    expect(await bus.stats(TOPIC, sub)).toEqual({ active: 0, deadLettered: 1, locked: 0 });
    const [dead] = await bus.receive(TOPIC, `${sub}/$DeadLetterQueue`);
    expect(dead).toMatchObject({ messageId: 'poison', deadLetterReason: MAX_DELIVERY_COUNT_EXCEEDED, deliveryCount: max });
    await bus.complete(dead?.lockToken as string);
    expect(await bus.stats(TOPIC, sub)).toEqual({ active: 0, deadLettered: 0, locked: 0 });
  });

  it('counts an expired lock as a delivery too (crashed consumer)', async () => {
    const sub = US[0] as string;
    await bus.publish(TOPIC, msg('crash', 'us'));
    for (let i = 1; i <= 5; i++) {
      const [m] = await bus.receive(TOPIC, sub);
      expect(m?.deliveryCount).toBe(i);
      clock.advance(LOCK_MS);
    }
    expect(await bus.receive(TOPIC, sub)).toEqual([]);
    expect(await ids(sub, true)).toEqual(['crash']);
  });

  it('redelivers after the lock expires; the stale lock token cannot settle', async () => {
    const sub = US[0] as string;
    await bus.publish(TOPIC, msg('slow', 'us'));
    const [first] = await bus.receive(TOPIC, sub);
    expect(await bus.receive(TOPIC, sub)).toEqual([]); // locked
    expect((await bus.stats(TOPIC, sub)).locked).toBe(1);
    clock.advance(LOCK_MS - 1);
    expect(await bus.receive(TOPIC, sub)).toEqual([]);
    clock.advance(1);
    const [second] = await bus.receive(TOPIC, sub);
    expect(second?.messageId).toBe('slow');
    expect(second?.deliveryCount).toBe(2);
    expect(second?.lockToken).not.toBe(first?.lockToken);
    const stale = await appErrorOf(bus.complete(first?.lockToken as string));
    expect(stale.code).toBe('conflict');
    expect(stale.message).toMatch(/lock lost/);
    expect((await appErrorOf(bus.abandon(first?.lockToken as string))).code).toBe('conflict');
    await bus.complete(second?.lockToken as string);
    expect((await appErrorOf(bus.complete(second?.lockToken as string))).code).toBe('conflict');
    expect(await bus.stats(TOPIC, sub)).toEqual({ active: 0, deadLettered: 0, locked: 0 });
  });

  it('rejects settling with an expired lock even before anyone re-locks it', async () => {
    const sub = US[0] as string;
    await bus.publish(TOPIC, msg('late', 'us'));
    const [m] = await bus.receive(TOPIC, sub);
    clock.advance(LOCK_MS);
    expect((await appErrorOf(bus.complete(m?.lockToken as string))).code).toBe('conflict');
    expect((await bus.stats(TOPIC, sub)).active).toBe(1);
  });

  it('renewLock extends the lock from now', async () => {
    const sub = US[0] as string;
    await bus.publish(TOPIC, msg('renew', 'us'));
    const [m] = await bus.receive(TOPIC, sub);
    clock.advance(LOCK_MS - 1000);
    const until = await bus.renewLock(m?.lockToken as string);
    expect(until.getTime()).toBe(clock.now() + LOCK_MS);
    clock.advance(LOCK_MS - 1);
    expect(await bus.receive(TOPIC, sub)).toEqual([]);
    await bus.complete(m?.lockToken as string);
  });

  it('dead-letters on TTL expiry when configured, drops otherwise; TTL is capped by the topic default', async () => {
    await bus.ensureSubscription(TOPIC, 'no-dlq', {
      filter: "targetRegion = 'us'",
      maxDeliveryCount: 5,
      lockDurationMs: LOCK_MS,
      deadLetteringOnMessageExpiration: false,
      deadLetteringOnFilterEvaluationExceptions: false,
    });
    await bus.publish(TOPIC, msg('short', 'us', { timeToLiveMs: 1000 }));
    await bus.publish(TOPIC, msg('long', 'us', { timeToLiveMs: 10 * 3600_000 }));
    clock.advance(1000);
    expect(await ids(US[0] as string)).toEqual(['long']);
    const [dead] = await bus.receive(TOPIC, US[0] as string, { deadLetter: true });
    expect(dead).toMatchObject({ messageId: 'short', deadLetterReason: TTL_EXPIRED_EXCEPTION });
    expect(await ids('no-dlq')).toEqual(['long']);
    expect(await bus.stats(TOPIC, 'no-dlq')).toMatchObject({ deadLettered: 0 });
    clock.advance(topology.topic.defaultMessageTimeToLiveSeconds * 1000);
    expect(await ids(US[1] as string)).toEqual([]);
    expect(await ids(US[1] as string, true)).toEqual(['long', 'short']);
  });

  it('dead-letters a filter evaluation error into that subscription with the reason', async () => {
    await bus.publish(TOPIC, msg('numeric-region', 1));
    for (const s of SUBS) {
      expect(await ids(s)).toEqual([]);
      const [dead] = await bus.receive(TOPIC, s, { deadLetter: true });
      expect(dead?.deadLetterReason).toBe(FILTER_EVALUATION_EXCEPTION);
      expect(dead?.deadLetterErrorDescription).toMatch(/cannot compare/);
    }
  });

  it('rejects a bad filter at subscription creation with its position', async () => {
    const err = await appErrorOf(
      bus.ensureSubscription(TOPIC, 'bad', {
        filter: "targetRegion = = 'us'",
        maxDeliveryCount: 5,
        lockDurationMs: LOCK_MS,
        deadLetteringOnMessageExpiration: true,
        deadLetteringOnFilterEvaluationExceptions: true,
      }),
    );
    expect(err.code).toBe('validation_failed');
    expect(err.message).toContain('position 16');
    expect(err.extensions['position']).toBe(16);
    await expect(bus.receive(TOPIC, 'bad')).rejects.toSatisfy((e) => isAppError(e, 'not_found'));
  });

  it('is idempotent and a changed filter takes effect, also in another process on the same file', async () => {
    const other = openBus(tmp.dir, clock);
    try {
      await other.publish(TOPIC, msg('before', 'eu')); // other has loaded the topology now
      await ensureTopology(bus, topology);
      const sub = topology.subscriptions[0] as (typeof topology.subscriptions)[number];
      await bus.ensureSubscription(TOPIC, sub.name, {
        filter: "targetRegion IN ('us', 'eu', 'all')",
        maxDeliveryCount: sub.maxDeliveryCount,
        lockDurationMs: sub.lockDurationSeconds * 1000,
        deadLetteringOnMessageExpiration: true,
        deadLetteringOnFilterEvaluationExceptions: true,
      });
      await other.publish(TOPIC, msg('after', 'eu'));
      expect(await ids(sub.name)).toEqual(['after']);
    } finally {
      await other.close();
    }
  });

  it('deadLetter() moves a message with reason and description; DLQ readable both ways', async () => {
    const sub = EU[0] as string;
    await bus.publish(TOPIC, msg('bad-doc', 'eu'));
    const [m] = await bus.receive(TOPIC, sub);
    await bus.deadLetter(m?.lockToken as string, { reason: 'ExtractionFailed', description: 'not a PDF' });
    const [viaName] = await bus.receive(TOPIC, `${sub}/$DeadLetterQueue`);
    expect(viaName).toMatchObject({ deadLetterReason: 'ExtractionFailed', deadLetterErrorDescription: 'not a PDF' });
    await bus.abandon(viaName?.lockToken as string);
    const [viaFlag] = await bus.receive(TOPIC, sub, { deadLetter: true });
    expect(viaFlag?.messageId).toBe('bad-doc');
  });

  it('refuses unknown topics and subscriptions, malformed messages, and works after restart', async () => {
    expect((await appErrorOf(bus.publish('nope', msg('x')))).code).toBe('not_found');
    expect((await appErrorOf(bus.receive(TOPIC, 'nope'))).code).toBe('not_found');
    expect((await appErrorOf(bus.publish(TOPIC, msg('')))).code).toBe('validation_failed');
    expect((await appErrorOf(bus.publish(TOPIC, { messageId: 'u', body: undefined }))).code).toBe('validation_failed');
    await bus.publish(TOPIC, msg('persisted', 'us'));
    await bus.close();
    await expect(bus.check()).rejects.toSatisfy((e) => isAppError(e, 'unavailable'));
    bus = openBus(tmp.dir, clock);
    await bus.check();
    expect(await ids(US[0] as string)).toEqual(['persisted']);
  });
});
