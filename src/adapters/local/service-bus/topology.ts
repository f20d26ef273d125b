import type { TopologyFile } from '../../../config';
import type { LocalServiceBus } from './local-service-bus';

/**
 * Creates (or updates) the topic and every subscription of `config/topology.json` on the
 * local bus. Idempotent; the seconds in the file become the bus's milliseconds.
 * @throws AppError `validation_failed` when a subscription's filter does not parse.
 */
export async function ensureTopology(
  bus: Pick<LocalServiceBus, 'ensureTopic' | 'ensureSubscription'>,
  topology: Pick<TopologyFile, 'topic' | 'subscriptions'>,
): Promise<void> {
  const { topic } = topology;
  await bus.ensureTopic(topic.name, {
    duplicateDetectionWindowMs: topic.duplicateDetectionWindowSeconds * 1000,
    defaultTtlMs: topic.defaultMessageTimeToLiveSeconds * 1000,
  });
  for (const s of topology.subscriptions) {
    await bus.ensureSubscription(topic.name, s.name, {
      filter: s.filter,
      maxDeliveryCount: s.maxDeliveryCount,
      lockDurationMs: s.lockDurationSeconds * 1000,
      deadLetteringOnMessageExpiration: s.deadLetteringOnMessageExpiration,
      deadLetteringOnFilterEvaluationExceptions: s.deadLetteringOnFilterEvaluationExceptions,
    });
  }
}
