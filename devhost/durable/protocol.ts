/**
 * The wire shapes between the Durable Task host and the durable-functions 3.x library, as read
 * from the library's shipped code (lib/src/history, lib/src/actions, TaskOrchestrationExecutor).
 */

/** History event types (HistoryEventType.js). */
export const EventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventSent: 14,
  EventRaised: 15,
  ContinueAsNew: 16,
  ExecutionSuspended: 19,
  ExecutionResumed: 20,
} as const;

/** A history event as the library reads it: PascalCase fields, `Timestamp` as an ISO string. */
export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
  [field: string]: unknown;
}

/** Action types (ActionType.js). */
export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
  LockEntities: 13,
  ReleaseEntities: 14,
} as const;

export const actionTypeName = (t: number): string =>
  Object.entries(ActionType).find(([, v]) => v === t)?.[0] ?? `actionType ${t}`;

export interface RetryOptionsWire {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
  retryTimeoutInMilliseconds?: number;
}

/** One action as serialized by the library (the union of every action class's fields). */
export interface ActionWire {
  actionType: number;
  functionName?: string;
  input?: unknown;
  retryOptions?: RetryOptionsWire;
  instanceId?: string;
  fireAt?: string;
  isCanceled?: boolean;
  externalEventName?: string;
  compoundActions?: ActionWire[];
  operation?: string;
}

/** What the orchestrator function returns (OrchestratorState.js). */
export interface OrchestratorStateWire {
  isDone: boolean;
  actions: ActionWire[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  schemaVersion?: number;
}

/** The ReplaySchema the engine announces: V3 (nested WhenAll/WhenAny, long timers; no entity locks). */
export const SCHEMA_VERSION = 2;
/** The extension's defaults for Azure Storage task hubs; longer timers are split into intervals. */
export const MAXIMUM_SHORT_TIMER = { text: '6.00:00:00', ms: 6 * 86_400_000 };
export const LONG_TIMER_INTERVAL = { text: '3.00:00:00', ms: 3 * 86_400_000 };

/** The label `OrchestrationFailureError` puts between the error message and the state JSON. */
export const OUT_OF_PROC_DATA = '\n\n$OutOfProcData$:';

/** Leaves of an action tree in the order the library assigns sequence numbers (depth first). */
export function flattenActions(actions: readonly ActionWire[], out: ActionWire[] = []): ActionWire[] {
  for (const action of actions) {
    if (action.actionType === ActionType.WhenAll || action.actionType === ActionType.WhenAny) {
      flattenActions(action.compoundActions ?? [], out);
    } else {
      out.push(action);
    }
  }
  return out;
}

/**
 * The library pre-serializes string inputs of activities and continueAsNew
 * (`Utils.processInput`: strings are JSON-stringified, everything else is passed as is).
 */
export function decodeProcessedInput(input: unknown): unknown {
  if (typeof input !== 'string') return input;
  try {
    return JSON.parse(input) as unknown;
  } catch {
    return input;
  }
}
