/**
 * Publishing events to a topic (Service Bus in Azure, the SQLite bus locally).
 * Domain types only: adapters map `OutgoingMessage` onto their SDK's message shape.
 */

/** Values an application property may hold (what Service Bus SQL filters can read). */
export type ApplicationPropertyValue = string | number | boolean | null;

export interface OutgoingMessage {
  /** Stable id; the topic drops a second message with the same id inside its duplicate-detection window. */
  messageId: string;
  /** The payload; must be JSON-serialisable. */
  body: unknown;
  /** User properties; subscription SQL filters read these (e.g. `targetRegion`). */
  applicationProperties?: Record<string, ApplicationPropertyValue>;
  /** Service Bus `subject` (`sys.Label` in SQL filters). */
  subject?: string;
  contentType?: string;
  /** Time to live; the topic's default TTL caps it. Absent means the topic default. */
  timeToLiveMs?: number;
}

export interface EventPublisher {
  /**
   * Publishes one message. Resolves once the broker has durably accepted it (a duplicate
   * inside the detection window is accepted and silently dropped, like Service Bus).
   * @throws AppError `not_found` when the topic does not exist, `validation_failed` for a
   *   malformed message (e.g. a body that is not JSON), `payload_too_large` when the broker
   *   refuses its size, `unavailable` (with `retryAfterSeconds`) when the broker is busy or
   *   unreachable — safe to retry with the same messageId.
   */
  publish(topic: string, message: OutgoingMessage): Promise<void>;

  /**
   * Publishes several messages to one topic, all or none. An empty array is a no-op.
   * @throws AppError with the same codes as `publish`; on a throw no message of the batch
   *   may be assumed delivered, and retrying the whole batch is safe (duplicate detection).
   */
  publishBatch(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
}
