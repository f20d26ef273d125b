/**
 * EventPublisher over Azure Service Bus (`@azure/service-bus`). It only sends: topics and
 * subscriptions are created by infra, never here (least-privilege "Data Sender" role).
 * SDK errors are translated into AppError once, here.
 */
import { isServiceBusError, type ServiceBusClient, type ServiceBusMessage } from '@azure/service-bus';
import { AppError, ensureError, isAppError } from '../../domain/errors';
import type { EventPublisher, OutgoingMessage } from '../../ports/event-publisher';

/** The part of `ServiceBusSender` this adapter uses (a recording fake in tests). */
export interface SenderLike {
  sendMessages(messages: ServiceBusMessage | ServiceBusMessage[]): Promise<void>;
  close(): Promise<void>;
}

export type SenderFactory = (topic: string) => SenderLike;

/** Seconds to wait before retrying, by failure. Service Bus asks for 10 s after ServerBusy. */
const RETRY_AFTER_SECONDS = { busy: 10, timeout: 2, quota: 30, disabled: 30, transient: 2 } as const;

/** Maps one outgoing message onto the SDK's message, leaving out what is not set. */
export function toServiceBusMessage(m: OutgoingMessage): ServiceBusMessage {
  if (typeof m.messageId !== 'string' || m.messageId.length === 0 || m.messageId.length > 128) {
    throw new AppError('validation_failed', 'messageId must be a non-empty string of at most 128 characters');
  }
  return {
    messageId: m.messageId,
    body: m.body,
    ...(m.applicationProperties !== undefined ? { applicationProperties: { ...m.applicationProperties } } : {}),
    ...(m.subject !== undefined ? { subject: m.subject } : {}),
    ...(m.contentType !== undefined ? { contentType: m.contentType } : {}),
    ...(m.timeToLiveMs !== undefined ? { timeToLive: m.timeToLiveMs } : {}),
  };
}

/** Translates anything the SDK throws into an AppError (once, at this boundary). */
export function translateServiceBusError(err: unknown, topic: string): AppError {
  if (isAppError(err)) return err;
  const cause = ensureError(err);
  const what = `Service Bus topic ${topic}`;
  if (isServiceBusError(err)) {
    switch (err.code) {
      case 'ServiceBusy':
        return new AppError('unavailable', `${what} is busy`, { cause, retryAfterSeconds: RETRY_AFTER_SECONDS.busy });
      case 'ServiceTimeout':
      case 'ServiceCommunicationProblem':
        return new AppError('unavailable', `${what} did not answer in time`, {
          cause,
          retryAfterSeconds: RETRY_AFTER_SECONDS.timeout,
        });
      case 'QuotaExceeded':
        return new AppError('unavailable', `${what} is over its quota`, {
          cause,
          retryAfterSeconds: RETRY_AFTER_SECONDS.quota,
        });
      case 'MessagingEntityDisabled':
        return new AppError('unavailable', `${what} is disabled`, {
          cause,
          retryAfterSeconds: RETRY_AFTER_SECONDS.disabled,
        });
      case 'MessageSizeExceeded':
        return new AppError('payload_too_large', `message too large for ${what}`, { cause });
      case 'MessagingEntityNotFound':
        return new AppError('not_found', `${what} does not exist (infra creates it; the app never does)`, { cause });
      case 'UnauthorizedAccess':
        // Our identity lacks the role: a deployment fault, never the caller's 401.
        return new AppError('internal', `not authorised to send to ${what}`, { cause });
      default:
        break;
    }
  }
  if ((err as { retryable?: unknown } | null)?.retryable === true) {
    return new AppError('unavailable', `${what} failed transiently`, {
      cause,
      retryAfterSeconds: RETRY_AFTER_SECONDS.transient,
    });
  }
  return new AppError('internal', `sending to ${what} failed`, { cause });
}

export class ServiceBusEventPublisher implements EventPublisher {
  private readonly senders = new Map<string, SenderLike>();

  /** @param createSender called once per topic; the sender is kept until `close()`. */
  constructor(private readonly createSender: SenderFactory) {}

  /** Publishes through `client.createSender(topic)`. The client stays the caller's to close. */
  static fromClient(client: ServiceBusClient): ServiceBusEventPublisher {
    return new ServiceBusEventPublisher((topic) => client.createSender(topic));
  }

  /** @inheritdoc */
  async publish(topic: string, message: OutgoingMessage): Promise<void> {
    const sbMessage = toServiceBusMessage(message);
    try {
      await this.sender(topic).sendMessages(sbMessage);
    } catch (err) {
      throw translateServiceBusError(err, topic);
    }
  }

  /** @inheritdoc One `sendMessages` call: the SDK sends the array as one batch or throws. */
  async publishBatch(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const sbMessages = messages.map(toServiceBusMessage);
    try {
      await this.sender(topic).sendMessages(sbMessages);
    } catch (err) {
      throw translateServiceBusError(err, topic);
    }
  }

  /** Closes every sender it created. */
  async close(): Promise<void> {
    const senders = [...this.senders.values()];
    this.senders.clear();
    await Promise.allSettled(senders.map((s) => s.close()));
  }

  private sender(topic: string): SenderLike {
    let s = this.senders.get(topic);
    if (!s) {
      s = this.createSender(topic);
      this.senders.set(topic, s);
    }
    return s;
  }
}
