/**
 * The orchestration engine: plays the Durable Task host's part for `df.app.orchestration` and
 * `df.app.activity` registrations. Each instance's history lives in SQLite; an *episode*
 * takes the instance's waiting inbox messages, appends them to the history after an
 * OrchestratorStarted event, replays the orchestrator over the whole history, and applies
 * the actions the replay produced that the history has not seen yet.
 *
 * Sequence numbers: the library numbers every activity, timer, sub-orchestration and signal
 * in the order it tracks them, and matches completions by that number (TaskScheduledId,
 * TimerId). It also takes numbers *without* emitting an action, while processing history:
 * a failed retryable attempt takes one for its backoff timer, that timer firing takes one for
 * the next attempt, and a fired slice of a long timer takes one for the next slice. The engine
 * mirrors that bookkeeping in `EngineState`. To know where those hidden numbers fall relative
 * to the numbers of newly yielded actions, an episode never appends anything after such an
 * event: the rest waits for the next episode. Then the library's order within an episode is
 * always "new actions (in action order), then the hidden number of the last event".
 */
import type { FunctionHost, FunctionInfo } from '../host';
import type { RpcTypedData } from '../functions-core';
import type { HostClock } from '../virtual-clock';
import {
  ActionType,
  actionTypeName,
  decodeProcessedInput,
  EventType,
  flattenActions,
  LONG_TIMER_INTERVAL,
  MAXIMUM_SHORT_TIMER,
  OUT_OF_PROC_DATA,
  SCHEMA_VERSION,
  type ActionWire,
  type HistoryEvent,
  type OrchestratorStateWire,
  type RetryOptionsWire,
} from './protocol';
import {
  TERMINAL,
  type DurableStore,
  type InboxMessage,
  type InstanceRow,
  type RuntimeStatus,
  type TimerRow,
  type WorkItem,
} from './store';

export type DurableLog = (level: 'debug' | 'information' | 'warning' | 'error', message: string) => void;

/** Generation of inbox events that belong to whatever execution is current (external events). */
const ANY_GENERATION = -1;
/** Wait before an episode whose commit failed (a busy or full database) runs again. */
const EPISODE_RETRY_MS = 250;

interface LeafRecord {
  /** Action type. */
  t: number;
  /** Function, event or operation name, when the action has one. */
  n?: string;
}

interface RetryTracker {
  leaf: number;
  kind: 'activity' | 'orchestration';
  name: string;
  /** JSON text of the input (null when none). */
  input: string | null;
  instanceId?: string;
  options: RetryOptionsWire;
  /** Attempts started so far. */
  attempt: number;
  /** Sequence number of the current attempt. */
  taskId: number;
  /** Sequence number of the backoff timer while waiting on it. */
  timerId?: number;
  phase: 'running' | 'waiting';
  firstAttemptAt: number;
  timedOut?: boolean;
}

interface LongTimerTracker {
  leaf: number;
  finalAt: number;
  subId: number;
}

/** The engine's per-instance bookkeeping, persisted with the instance row. */
interface EngineState {
  nextSeq: number;
  leaves: LeafRecord[];
  /** Current timer sequence number of each timer leaf (to cancel it). */
  timerOf: Record<number, number>;
  canceled: number[];
  retries: RetryTracker[];
  longTimers: LongTimerTracker[];
}

const freshState = (): EngineState => ({ nextSeq: 0, leaves: [], timerOf: {}, canceled: [], retries: [], longTimers: [] });

interface Live {
  row: InstanceRow;
  history: HistoryEvent[];
  es: EngineState;
}

type Dynamic =
  | { kind: 'retryFailed'; tracker: RetryTracker; error: HistoryEvent }
  | { kind: 'retryTimer'; tracker: RetryTracker }
  | { kind: 'longTimer'; tracker: LongTimerTracker };

/** Side effects of a committed transaction, applied to the in-memory queues afterwards. */
interface Effects {
  work: WorkItem[];
  timers: TimerRow[];
  canceledTimers: number[];
  ready: string[];
  evict: string[];
}

const newEffects = (): Effects => ({ work: [], timers: [], canceledTimers: [], ready: [], evict: [] });

export class EngineError extends Error {
  constructor(
    readonly code: 'not_found' | 'conflict' | 'gone' | 'bad_request',
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export interface EngineStats {
  episodes: number;
  activities: number;
  timersFired: number;
  pendingTimers: number;
  queuedWork: number;
  readyInstances: number;
  active: number;
  /** Wall time of orchestrator episodes (replay + applying actions + commit), in ms. */
  episodeMs: { count: number; p50: number; p99: number; max: number };
  instances: Record<string, number>;
}

export interface InstanceStatus {
  name: string;
  instanceId: string;
  runtimeStatus: RuntimeStatus;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  createdTime: string;
  lastUpdatedTime: string;
  historyEvents?: HistoryEvent[];
  history?: HistoryEvent[];
}

export interface EngineOptions {
  host: FunctionHost;
  store: DurableStore;
  clock: HostClock;
  log?: DurableLog;
  /** Invocations (episodes and activities) running at once. Default 32. */
  maxConcurrency?: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const parseJson = (text: string | null | undefined): unknown => (text == null ? null : (JSON.parse(text) as unknown));
const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Converts a function's return value (RpcTypedData) back to a value. */
export function fromTypedData(data: RpcTypedData | null | undefined): unknown {
  if (!data) return undefined;
  if (data.json != null) return JSON.parse(data.json) as unknown;
  if (data.string != null) return data.string;
  if (data.int != null) return Number(data.int);
  if (data.double != null) return data.double;
  if (data.bytes != null) return Buffer.from(data.bytes).toString('base64');
  return undefined;
}

export class DurableEngine {
  readonly #host: FunctionHost;
  readonly #store: DurableStore;
  readonly #clock: HostClock;
  readonly #log: DurableLog;
  readonly #max: number;
  readonly #live = new Map<string, Live>();
  readonly #readyQueue: string[] = [];
  readonly #ready = new Set<string>();
  readonly #running = new Set<string>();
  readonly #rerun = new Set<string>();
  readonly #workQueue: WorkItem[] = [];
  readonly #timers = new Map<number, TimerRow>();
  readonly #episodeMs: number[] = [];
  #active = 0;
  #turn = 0;
  #stopping = false;
  #idle: (() => void) | undefined;
  #timeout: NodeJS.Timeout | undefined;
  #armedAt = Infinity;
  #unsubscribe: (() => void) | undefined;
  #counters = { episodes: 0, activities: 0, timersFired: 0 };

  constructor(options: EngineOptions) {
    this.#host = options.host;
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log ?? (() => undefined);
    this.#max = Math.max(1, options.maxConcurrency ?? 32);
  }

  /** Re-dispatches what was pending when the process stopped and starts firing timers. */
  start(): void {
    for (const w of this.#store.allWork()) this.#workQueue.push(w);
    for (const t of this.#store.allTimers()) this.#timers.set(t.id, t);
    for (const id of this.#store.instancesWithInbox()) this.#markReady(id);
    this.#unsubscribe = this.#clock.onChange(() => this.#fireDue());
    this.#arm();
    this.#pump();
  }

  /** Stops dispatching, waits for running invocations to finish and commit. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#unsubscribe?.();
    if (this.#timeout) clearTimeout(this.#timeout);
    if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
  }

  stats(): EngineStats {
    const sorted = [...this.#episodeMs].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return {
      ...this.#counters,
      pendingTimers: this.#timers.size,
      queuedWork: this.#workQueue.length,
      readyInstances: this.#ready.size,
      active: this.#active,
      episodeMs: { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 },
      instances: this.#store.countByStatus(),
    };
  }

  // ---------------------------------------------------------------- client operations

  /** Creates an instance and queues its first episode. Throws EngineError on a bad name or a live duplicate. */
  startNew(name: string, instanceId: string, input: unknown): string {
    const fn = this.#function(name);
    if (!fn || fn.trigger.type !== 'orchestrationTrigger') {
      throw new EngineError('bad_request', `No orchestrator function named '${name}' is registered.`);
    }
    const effects = newEffects();
    this.#store.tx(() => {
      const existing = this.#store.getInstance(instanceId);
      if (existing && !TERMINAL.has(existing.status)) {
        throw new EngineError('conflict', `An instance with ID '${instanceId}' already exists and is ${existing.status}.`);
      }
      if (existing) effects.canceledTimers.push(...this.#store.purge(instanceId));
      this.#insertInstance(instanceId, name, input, undefined, effects);
    });
    this.#apply(effects);
    return instanceId;
  }

  status(instanceId: string, opts: { showHistory?: boolean; showInput?: boolean } = {}): InstanceStatus | undefined {
    const row = this.#live.get(instanceId)?.row ?? this.#store.getInstance(instanceId);
    if (!row) return undefined;
    const status = this.#statusOf(row, opts.showInput ?? true);
    if (opts.showHistory) {
      // `historyEvents` is the webhook API's name; the library's DurableOrchestrationStatus reads `history`.
      status.historyEvents = this.#live.get(instanceId)?.history ?? this.#store.history(instanceId);
      status.history = status.historyEvents;
    }
    return status;
  }

  list(query: Parameters<DurableStore['queryInstances']>[0]): InstanceStatus[] {
    return this.#store.queryInstances(query).map((r) => this.#statusOf(r, true));
  }

  /** Queues an external event. Throws EngineError not_found / gone. */
  raiseEvent(instanceId: string, eventName: string, data: unknown): void {
    this.#requireLive(instanceId);
    this.#store.enqueue(instanceId, {
      kind: 'event',
      generation: ANY_GENERATION,
      event: this.#event(EventType.EventRaised, { Name: eventName, Input: JSON.stringify(data ?? null) }),
    });
    this.#markReady(instanceId);
  }

  terminate(instanceId: string, reason: string): void {
    this.#requireLive(instanceId);
    this.#store.enqueue(instanceId, { kind: 'terminate', reason });
    this.#markReady(instanceId);
  }

  suspend(instanceId: string): void {
    const row = this.#requireLive(instanceId);
    if (row.status === 'Suspended') return;
    row.status = 'Suspended';
    row.updatedAt = this.#clock.now();
    this.#store.updateInstance(row);
  }

  resume(instanceId: string): void {
    const row = this.#requireLive(instanceId);
    if (row.status !== 'Suspended') return;
    row.status = 'Running';
    row.updatedAt = this.#clock.now();
    this.#store.updateInstance(row);
    this.#markReady(instanceId);
  }

  /** Deletes a finished instance. Returns false when absent; throws EngineError conflict while it runs. */
  purge(instanceId: string): boolean {
    const row = this.#store.getInstance(instanceId);
    if (!row) return false;
    if (!TERMINAL.has(row.status)) {
      throw new EngineError('conflict', `Instance '${instanceId}' is ${row.status}; only finished instances can be purged.`);
    }
    const timers = this.#store.tx(() => this.#store.purge(instanceId));
    for (const t of timers) this.#timers.delete(t);
    this.#live.delete(instanceId);
    return true;
  }

  // ---------------------------------------------------------------- dispatch

  #markReady(id: string): void {
    if (this.#running.has(id)) {
      this.#rerun.add(id);
      return;
    }
    if (this.#ready.has(id)) return;
    this.#ready.add(id);
    this.#readyQueue.push(id);
    this.#pump();
  }

  #pump(): void {
    while (!this.#stopping && this.#active < this.#max) {
      const preferWork = this.#turn++ % 2 === 0;
      if (this.#workQueue.length > 0 && (preferWork || this.#readyQueue.length === 0)) {
        const w = this.#workQueue.shift() as WorkItem;
        this.#run(() => this.#runWork(w));
      } else if (this.#readyQueue.length > 0) {
        const id = this.#readyQueue.shift() as string;
        this.#ready.delete(id);
        this.#running.add(id);
        this.#run(async () => {
          try {
            // An episode stops at an event that needs engine bookkeeping (a retry, a long
            // timer's slice): what is queued behind it runs in the next episode, now.
            if (await this.#runEpisode(id)) this.#rerun.add(id);
          } catch (err) {
            // The episode's transaction rolled back, but the cached instance was changed inside
            // it: drop the cache so the retry replays from what is stored, and retry the episode
            // (the Durable Task framework abandons the work item and delivers it again). Kept,
            // the advanced bookkeeping made the next episode schedule nothing, and persisted it.
            this.#live.delete(id);
            const retry = setTimeout(() => {
              if (!this.#stopping) this.#markReady(id);
            }, EPISODE_RETRY_MS);
            retry.unref();
            throw err; // logged by #run
          } finally {
            this.#running.delete(id);
            if (this.#rerun.delete(id)) this.#markReady(id);
          }
        });
      } else {
        return;
      }
    }
  }

  #run(task: () => Promise<void>): void {
    this.#active++;
    void task()
      .catch((err: unknown) => this.#log('error', `durable engine failure: ${(err as Error)?.stack ?? String(err)}`))
      .finally(() => {
        this.#active--;
        if (this.#stopping) {
          if (this.#active === 0) this.#idle?.();
        } else {
          this.#pump();
        }
      });
  }

  // ---------------------------------------------------------------- activities

  async #runWork(w: WorkItem): Promise<void> {
    const fn = this.#function(w.name);
    let event: HistoryEvent;
    try {
      if (!fn) throw new Error(`no function named '${w.name}' is registered`);
      const { response } = await this.#host.invoke(w.name, {
        inputData: [{ name: fn.triggerName, data: w.input === null ? {} : { json: w.input } }],
        triggerMetadata: {},
      });
      const value = fromTypedData(response.returnValue);
      event = this.#event(EventType.TaskCompleted, { TaskScheduledId: w.taskId, Result: JSON.stringify(value ?? null) });
    } catch (err) {
      event = this.#taskFailed(w.taskId, `Activity function '${w.name}' failed: `, err);
    }
    this.#counters.activities++;
    this.#store.tx(() => {
      this.#store.deleteWork(w.id);
      this.#store.enqueue(w.instanceId, { kind: 'event', generation: w.generation, event });
    });
    this.#markReady(w.instanceId);
  }

  #taskFailed(taskId: number, prefix: string, err: unknown, type: number = EventType.TaskFailed): HistoryEvent {
    const message = errorMessage(err);
    const fields: Record<string, unknown> = {
      TaskScheduledId: taskId,
      Reason: `${prefix}${message}`,
      Details: (err instanceof Error && err.stack) || '',
    };
    // With an exception properties provider registered, activities throw their failure details as JSON.
    try {
      const p = JSON.parse(message) as Record<string, unknown> | null;
      if (p && typeof p['errorType'] === 'string') {
        fields['FailureDetails'] = {
          ErrorType: p['errorType'],
          ErrorMessage: p['errorMessage'],
          StackTrace: p['stackTrace'],
          IsNonRetriable: p['isNonRetriable'] ?? false,
          Properties: p['properties'],
        };
      }
    } catch {
      // a plain message
    }
    return this.#event(type, fields);
  }

  // ---------------------------------------------------------------- timers

  #arm(): void {
    if (this.#stopping) return;
    let next = Infinity;
    for (const t of this.#timers.values()) if (t.fireAt < next) next = t.fireAt;
    if (next === Infinity) return;
    const now = this.#clock.now();
    if (next <= now) {
      setImmediate(() => this.#fireDue());
      return;
    }
    if (this.#clock.virtual || next >= this.#armedAt) return;
    if (this.#timeout) clearTimeout(this.#timeout);
    this.#armedAt = next;
    this.#timeout = setTimeout(
      () => {
        this.#armedAt = Infinity;
        this.#timeout = undefined;
        this.#fireDue();
      },
      Math.min(next - now, 2 ** 31 - 1),
    );
  }

  #fireDue(): void {
    if (this.#stopping) return;
    const now = this.#clock.now();
    const due = [...this.#timers.values()].filter((t) => t.fireAt <= now).sort((a, b) => a.fireAt - b.fireAt);
    if (due.length > 0) {
      this.#store.tx(() => {
        for (const t of due) {
          this.#store.deleteTimer(t.id);
          this.#store.enqueue(t.instanceId, {
            kind: 'event',
            generation: t.generation,
            event: this.#event(EventType.TimerFired, { TimerId: t.timerId, FireAt: iso(t.fireAt) }),
          });
        }
      });
      for (const t of due) {
        this.#timers.delete(t.id);
        this.#counters.timersFired++;
        this.#markReady(t.instanceId);
      }
    }
    this.#arm();
  }

  // ---------------------------------------------------------------- episodes

  #load(id: string): Live | undefined {
    const cached = this.#live.get(id);
    if (cached) return cached;
    const row = this.#store.getInstance(id);
    if (!row) return undefined;
    const live: Live = { row, history: this.#store.history(id), es: JSON.parse(row.engineState) as EngineState };
    if (!TERMINAL.has(row.status)) this.#live.set(id, live);
    return live;
  }

  /** Runs one episode; true when messages are left in the inbox for the next one. */
  async #runEpisode(id: string): Promise<boolean> {
    const messages = this.#store.inbox(id);
    if (messages.length === 0) return false;
    const live = this.#load(id);
    const row = live?.row;
    if (!live || !row || TERMINAL.has(row.status)) {
      this.#store.tx(() => messages.forEach((m) => this.#store.dequeue(m.id)));
      return false;
    }
    const terminate = messages.find((m) => m.message.kind === 'terminate')?.message as
      Extract<InboxMessage, { kind: 'terminate' }> | undefined;
    if (terminate) {
      const effects = newEffects();
      const appended = [this.#event(EventType.ExecutionTerminated, { Input: terminate.reason })];
      this.#store.tx(() => {
        this.#finish(live, 'Terminated', JSON.stringify(terminate.reason), appended, effects, {
          reason: `Instance terminated: ${terminate.reason}`,
        });
        this.#commitHistory(live, appended);
      });
      this.#apply(effects);
      return false;
    }
    if (row.status === 'Suspended') return false;

    const started = performance.now();
    const now = this.#clock.now();
    const consumed: number[] = [];
    const incoming: HistoryEvent[] = [];
    let starting = false;
    let dynamic: Dynamic | undefined;
    for (const { id: messageId, message } of messages) {
      consumed.push(messageId);
      if (message.kind === 'start') {
        if (live.history.length === 0) starting = true;
        continue;
      }
      if (message.kind !== 'event') continue;
      if (message.generation !== ANY_GENERATION && message.generation !== row.generation) continue;
      const event = { ...message.event, Timestamp: iso(now) };
      incoming.push(event);
      dynamic = this.#dynamicOf(live.es, event, now);
      if (dynamic) break;
    }
    if (!starting && (incoming.length === 0 || live.history.length === 0)) {
      this.#store.tx(() => consumed.forEach((m) => this.#store.dequeue(m)));
      return consumed.length < messages.length;
    }
    const newEvents: HistoryEvent[] = [this.#event(EventType.OrchestratorStarted, {}, now)];
    if (starting) {
      newEvents.push(
        this.#event(
          EventType.ExecutionStarted,
          {
            Name: row.name,
            Input: row.input,
            OrchestrationInstance: { InstanceId: row.id, ExecutionId: `${row.id}#${row.generation}` },
            ParentInstance: row.parentId ? { OrchestrationInstance: { InstanceId: row.parentId } } : undefined,
          },
          now,
        ),
      );
    }
    newEvents.push(...incoming);

    const outcome = await this.#replay(live, newEvents);
    const effects = newEffects();
    this.#store.tx(() => {
      const appended = [...newEvents];
      this.#applyOutcome(live, outcome, appended, dynamic, now, effects);
      if (!TERMINAL.has(live.row.status) && live.history.length + appended.length > 0 && live.row.status !== 'ContinuedAsNew') {
        appended.push(this.#event(EventType.OrchestratorCompleted, {}, now));
      }
      if (live.row.status === 'ContinuedAsNew') {
        live.row.status = 'Running';
        this.#store.updateInstance(live.row);
      } else {
        this.#commitHistory(live, appended);
      }
      for (const m of consumed) this.#store.dequeue(m);
    });
    this.#apply(effects);
    this.#counters.episodes++;
    if (this.#episodeMs.length < 200_000) this.#episodeMs.push(performance.now() - started);
    return consumed.length < messages.length;
  }

  #commitHistory(live: Live, appended: HistoryEvent[]): void {
    this.#store.appendHistory(live.row.id, live.history.length, appended);
    live.history.push(...appended);
    live.row.engineState = JSON.stringify(live.es);
    this.#store.updateInstance(live.row);
  }

  async #replay(
    live: Live,
    newEvents: HistoryEvent[],
  ): Promise<{ state: OrchestratorStateWire } | { failed: string; details: string }> {
    const { row } = live;
    const fn = this.#function(row.name);
    if (!fn || fn.trigger.type !== 'orchestrationTrigger') {
      return { failed: `No orchestrator function named '${row.name}' is registered.`, details: '' };
    }
    const binding = {
      history: live.history.length === 0 ? newEvents : live.history.concat(newEvents),
      input: parseJson(row.input) ?? undefined,
      instanceId: row.id,
      isReplaying: live.history.length > 0,
      parentInstanceId: row.parentId ?? undefined,
      upperSchemaVersion: SCHEMA_VERSION,
      upperSchemaVersionNew: SCHEMA_VERSION,
      maximumShortTimerDuration: MAXIMUM_SHORT_TIMER.text,
      longRunningTimerIntervalDuration: LONG_TIMER_INTERVAL.text,
      defaultHttpAsyncRequestSleepTimeMillseconds: 30_000,
    };
    try {
      const { response } = await this.#host.invoke(row.name, {
        inputData: [{ name: fn.triggerName, data: { json: JSON.stringify(binding) } }],
        triggerMetadata: {},
      });
      const state = fromTypedData(response.returnValue) as OrchestratorStateWire | undefined;
      if (!state || !Array.isArray(state.actions)) {
        return {
          failed: `Orchestrator '${row.name}' returned no orchestrator state: is it registered with df.app.orchestration?`,
          details: '',
        };
      }
      return { state };
    } catch (err) {
      const message = errorMessage(err);
      const at = message.indexOf(OUT_OF_PROC_DATA);
      if (at < 0) return { failed: message, details: (err instanceof Error && err.stack) || '' };
      let error = message.slice(0, at);
      try {
        const state = JSON.parse(message.slice(at + OUT_OF_PROC_DATA.length)) as OrchestratorStateWire;
        if (state.customStatus !== undefined) live.row.customStatus = JSON.stringify(state.customStatus);
        error = state.error ?? error;
      } catch {
        // keep the message part
      }
      return { failed: error, details: (err instanceof Error && err.stack) || '' };
    }
  }

  /** Which engine-side bookkeeping an incoming event triggers (see the file comment). */
  #dynamicOf(es: EngineState, event: HistoryEvent, now: number): Dynamic | undefined {
    if (event.EventType === EventType.TaskFailed || event.EventType === EventType.SubOrchestrationInstanceFailed) {
      const tracker = es.retries.find((r) => r.phase === 'running' && r.taskId === event['TaskScheduledId']);
      return tracker && { kind: 'retryFailed', tracker, error: event };
    }
    if (event.EventType === EventType.TimerFired) {
      const retry = es.retries.find((r) => r.phase === 'waiting' && r.timerId === event['TimerId']);
      if (retry) return retry.attempt < retry.options.maxNumberOfAttempts ? { kind: 'retryTimer', tracker: retry } : undefined;
      const long = es.longTimers.find((t) => t.subId === event['TimerId']);
      if (long && long.finalAt > now) return { kind: 'longTimer', tracker: long };
    }
    return undefined;
  }

  #applyOutcome(
    live: Live,
    outcome: { state: OrchestratorStateWire } | { failed: string; details: string },
    appended: HistoryEvent[],
    dynamic: Dynamic | undefined,
    now: number,
    effects: Effects,
  ): void {
    const { row, es } = live;
    const fail = (reason: string, details = '') => {
      this.#log('warning', `orchestration ${row.name} (${row.id}) failed: ${reason}`);
      this.#finish(live, 'Failed', JSON.stringify(`Orchestrator function '${row.name}' failed: ${reason}`), appended, effects, {
        reason,
        details,
        failed: true,
      });
    };
    if ('failed' in outcome) {
      fail(outcome.failed, outcome.details);
      return;
    }
    const { state } = outcome;
    if (state.customStatus !== undefined) row.customStatus = JSON.stringify(state.customStatus);
    const leaves = flattenActions(state.actions.flat());

    // Non-determinism: the replay must produce, at each position, what the history recorded.
    for (let i = 0; i < es.leaves.length; i++) {
      const recorded = es.leaves[i] as LeafRecord;
      const now_ = leaves[i];
      if (!now_) {
        if (state.isDone) break;
        fail(
          `Non-deterministic workflow detected: the history recorded ${es.leaves.length} actions, ` +
            `but the replay produced only ${leaves.length} (missing ${describeLeaf(recorded)} at position ${i}).`,
        );
        return;
      }
      const got = leafRecord(now_);
      if (got.t !== recorded.t || got.n !== recorded.n) {
        fail(
          `Non-deterministic workflow detected: at action position ${i} the history recorded ` +
            `${describeLeaf(recorded)} but the replay produced ${describeLeaf(got)}. ` +
            'Orchestrator code must be deterministic: do not change it while instances are in flight.',
        );
        return;
      }
      if (now_.actionType === ActionType.CreateTimer && now_.isCanceled && !es.canceled.includes(i)) {
        es.canceled.push(i);
        const timerId = es.timerOf[i];
        if (timerId !== undefined) effects.canceledTimers.push(...this.#store.deleteTimerByTask(row.id, timerId));
        es.longTimers = es.longTimers.filter((t) => t.leaf !== i);
      }
    }

    let continueAsNew: ActionWire | undefined;
    for (let i = es.leaves.length; i < leaves.length; i++) {
      const action = leaves[i] as ActionWire;
      es.leaves.push(leafRecord(action));
      switch (action.actionType) {
        case ActionType.CallActivity:
        case ActionType.CallActivityWithRetry: {
          const taskId = es.nextSeq++;
          const input = encodeInput(decodeProcessedInput(action.input));
          const name = action.functionName ?? '';
          this.#scheduleActivity(live, taskId, name, input, appended, effects);
          if (action.actionType === ActionType.CallActivityWithRetry && action.retryOptions) {
            es.retries.push(retryTracker(i, 'activity', name, input, action.retryOptions, taskId, now));
          }
          break;
        }
        case ActionType.CallSubOrchestrator:
        case ActionType.CallSubOrchestratorWithRetry: {
          const taskId = es.nextSeq++;
          const input = encodeInput(action.input);
          const name = action.functionName ?? '';
          this.#startChild(live, taskId, name, input, action.instanceId, appended, effects);
          if (action.actionType === ActionType.CallSubOrchestratorWithRetry && action.retryOptions) {
            const tracker = retryTracker(i, 'orchestration', name, input, action.retryOptions, taskId, now);
            if (action.instanceId) tracker.instanceId = action.instanceId;
            es.retries.push(tracker);
          }
          break;
        }
        case ActionType.CreateTimer: {
          const timerId = es.nextSeq++;
          es.timerOf[i] = timerId;
          const finalAt = Date.parse(action.fireAt ?? '');
          if (Number.isNaN(finalAt)) {
            fail(`createTimer was given an invalid fireAt (${String(action.fireAt)}).`);
            return;
          }
          if (action.isCanceled) {
            es.canceled.push(i);
            break;
          }
          let fireAt = finalAt;
          if (finalAt - now > MAXIMUM_SHORT_TIMER.ms) {
            fireAt = now + LONG_TIMER_INTERVAL.ms;
            es.longTimers.push({ leaf: i, finalAt, subId: timerId });
          }
          this.#createTimer(live, timerId, fireAt, appended, effects);
          break;
        }
        case ActionType.WaitForExternalEvent:
          break;
        case ActionType.ContinueAsNew:
          continueAsNew = action;
          break;
        default:
          fail(
            `devhost's durable engine does not support the ${actionTypeName(action.actionType)} action ` +
              '(supported: callActivity[WithRetry], callSubOrchestrator[WithRetry], createTimer, ' +
              'waitForExternalEvent, Task.all, Task.any, continueAsNew, setCustomStatus).',
          );
          return;
      }
    }

    if (dynamic && !state.isDone) this.#applyDynamic(live, dynamic, now, appended, effects);

    if (state.isDone) {
      if (continueAsNew) {
        this.#continueAsNew(live, decodeProcessedInput(continueAsNew.input), effects);
      } else {
        appended.push(
          this.#event(EventType.ExecutionCompleted, { OrchestrationStatus: 0, Result: JSON.stringify(state.output ?? null) }),
        );
        this.#finish(live, 'Completed', JSON.stringify(state.output ?? null), appended, effects);
      }
    } else if (row.status === 'Pending') {
      row.status = 'Running';
      row.updatedAt = now;
    } else {
      row.updatedAt = now;
    }
  }

  #applyDynamic(live: Live, dynamic: Dynamic, now: number, appended: HistoryEvent[], effects: Effects): void {
    const { es } = live;
    if (dynamic.kind === 'retryFailed') {
      const t = dynamic.tracker;
      const timerId = es.nextSeq++;
      t.phase = 'waiting';
      t.timerId = timerId;
      let delay = 0;
      if (t.attempt < t.options.maxNumberOfAttempts) {
        const o = t.options;
        delay = o.firstRetryIntervalInMilliseconds * Math.pow(o.backoffCoefficient ?? 1, t.attempt - 1);
        if (o.maxRetryIntervalInMilliseconds && o.maxRetryIntervalInMilliseconds > 0) {
          delay = Math.min(delay, o.maxRetryIntervalInMilliseconds);
        }
        if (o.retryTimeoutInMilliseconds && now + delay - t.firstAttemptAt > o.retryTimeoutInMilliseconds) {
          // The library decides retries by attempt count only: remaining attempts fail at once.
          t.timedOut = true;
          delay = 0;
        }
      }
      this.#createTimer(live, timerId, now + delay, appended, effects);
      es.timerOf[t.leaf] = timerId;
    } else if (dynamic.kind === 'retryTimer') {
      const t = dynamic.tracker;
      const taskId = es.nextSeq++;
      t.attempt++;
      t.taskId = taskId;
      t.phase = 'running';
      delete t.timerId;
      if (t.timedOut) {
        const type = t.kind === 'activity' ? EventType.TaskFailed : EventType.SubOrchestrationInstanceFailed;
        const event = this.#taskFailed(
          taskId,
          '',
          new Error(`retry timeout of ${t.options.retryTimeoutInMilliseconds} ms exceeded`),
          type,
        );
        this.#store.enqueue(live.row.id, { kind: 'event', generation: live.row.generation, event });
        effects.ready.push(live.row.id);
      } else if (t.kind === 'activity') {
        this.#scheduleActivity(live, taskId, t.name, t.input, appended, effects);
      } else {
        this.#startChild(live, taskId, t.name, t.input, t.instanceId, appended, effects);
      }
    } else {
      const t = dynamic.tracker;
      const subId = es.nextSeq++;
      t.subId = subId;
      es.timerOf[t.leaf] = subId;
      const fireAt = t.finalAt - now > MAXIMUM_SHORT_TIMER.ms ? now + LONG_TIMER_INTERVAL.ms : t.finalAt;
      this.#createTimer(live, subId, fireAt, appended, effects);
    }
  }

  #scheduleActivity(
    live: Live,
    taskId: number,
    name: string,
    input: string | null,
    appended: HistoryEvent[],
    effects: Effects,
  ): void {
    appended.push(this.#event(EventType.TaskScheduled, { Name: name, Input: input }, undefined, taskId));
    const fn = this.#function(name);
    if (!fn || fn.trigger.type !== 'activityTrigger') {
      const event = this.#taskFailed(taskId, '', new Error(`No activity function named '${name}' is registered.`));
      this.#store.enqueue(live.row.id, { kind: 'event', generation: live.row.generation, event });
      effects.ready.push(live.row.id);
      return;
    }
    effects.work.push(this.#store.insertWork({ instanceId: live.row.id, generation: live.row.generation, taskId, name, input }));
  }

  #createTimer(live: Live, timerId: number, fireAt: number, appended: HistoryEvent[], effects: Effects): void {
    appended.push(this.#event(EventType.TimerCreated, { FireAt: iso(fireAt) }, undefined, timerId));
    effects.timers.push(this.#store.insertTimer({ instanceId: live.row.id, generation: live.row.generation, timerId, fireAt }));
  }

  #startChild(
    live: Live,
    taskId: number,
    name: string,
    input: string | null,
    requestedId: string | undefined,
    appended: HistoryEvent[],
    effects: Effects,
  ): void {
    const childId = requestedId ?? `${live.row.id}:${taskId}`;
    appended.push(
      this.#event(
        EventType.SubOrchestrationInstanceCreated,
        { Name: name, InstanceId: childId, Input: input },
        undefined,
        taskId,
      ),
    );
    const fn = this.#function(name);
    const existing = this.#store.getInstance(childId);
    let problem: string | undefined;
    if (!fn || fn.trigger.type !== 'orchestrationTrigger') problem = `No orchestrator function named '${name}' is registered.`;
    else if (existing && !TERMINAL.has(existing.status)) problem = `An instance with ID '${childId}' already exists.`;
    if (problem) {
      const event = this.#taskFailed(taskId, '', new Error(problem), EventType.SubOrchestrationInstanceFailed);
      this.#store.enqueue(live.row.id, { kind: 'event', generation: live.row.generation, event });
      effects.ready.push(live.row.id);
      return;
    }
    if (existing) effects.canceledTimers.push(...this.#store.purge(childId));
    this.#insertInstance(childId, name, parseJson(input), { live, taskId }, effects);
  }

  #insertInstance(
    id: string,
    name: string,
    input: unknown,
    parent: { live: Live; taskId: number } | undefined,
    effects: Effects,
  ): void {
    const now = this.#clock.now();
    this.#live.delete(id);
    this.#store.insertInstance({
      id,
      name,
      status: 'Pending',
      input: input === undefined ? null : JSON.stringify(input),
      output: null,
      customStatus: null,
      createdAt: now,
      updatedAt: now,
      parentId: parent?.live.row.id ?? null,
      parentTaskId: parent?.taskId ?? null,
      parentGeneration: parent?.live.row.generation ?? null,
      // Every execution (also one that replaces a terminal or purged instance of the same id,
      // and every continue-as-new) gets a generation never used before, so a late activity or
      // timer result of an older execution (queued with its generation) is discarded, as the
      // Durable Task framework discards a message of another ExecutionId, instead of completing
      // the new execution's task of the same sequence number.
      generation: this.#store.nextGeneration(),
      engineState: JSON.stringify(freshState()),
    });
    this.#store.enqueue(id, { kind: 'start' });
    effects.ready.push(id);
  }

  #continueAsNew(live: Live, input: unknown, effects: Effects): void {
    const { row } = live;
    effects.canceledTimers.push(...this.#store.clearPending(row.id, { inbox: false }));
    this.#store.clearHistory(row.id);
    live.history = [];
    live.es = freshState();
    row.generation = this.#store.nextGeneration();
    row.input = input === undefined ? null : JSON.stringify(input);
    row.output = null;
    row.status = 'ContinuedAsNew';
    row.updatedAt = this.#clock.now();
    row.engineState = JSON.stringify(live.es);
    this.#store.updateInstance(row);
    this.#store.enqueue(row.id, { kind: 'start' });
    effects.ready.push(row.id);
  }

  /** Makes the instance terminal, drops what it still waited for and tells its parent. */
  #finish(
    live: Live,
    status: RuntimeStatus,
    output: string,
    appended: HistoryEvent[],
    effects: Effects,
    failure?: { reason: string; details?: string; failed?: boolean },
  ): void {
    const { row } = live;
    if (status === 'Failed') {
      appended.push(this.#event(EventType.ExecutionCompleted, { OrchestrationStatus: 3, Result: output }));
    }
    row.status = status;
    row.output = output;
    row.updatedAt = this.#clock.now();
    effects.canceledTimers.push(...this.#store.clearPending(row.id, { inbox: true }));
    effects.evict.push(row.id);
    if (row.parentId !== null && row.parentTaskId !== null) {
      const event =
        status === 'Completed'
          ? this.#event(EventType.SubOrchestrationInstanceCompleted, { TaskScheduledId: row.parentTaskId, Result: output })
          : this.#event(EventType.SubOrchestrationInstanceFailed, {
              TaskScheduledId: row.parentTaskId,
              Reason: `Sub-orchestration '${row.name}' (${row.id}) ${status === 'Failed' ? 'failed' : 'was terminated'}: ${failure?.reason ?? ''}`,
              Details: failure?.details ?? '',
            });
      this.#store.enqueue(row.parentId, { kind: 'event', generation: row.parentGeneration ?? 0, event });
      effects.ready.push(row.parentId);
    }
  }

  #apply(effects: Effects): void {
    const evicted = new Set(effects.evict);
    for (const id of evicted) this.#live.delete(id);
    for (const t of effects.timers) this.#timers.set(t.id, t);
    for (const t of effects.canceledTimers) this.#timers.delete(t);
    if (effects.timers.length > 0) this.#arm();
    // Work scheduled by an episode that then failed the instance was deleted with it.
    this.#workQueue.push(...effects.work.filter((w) => !evicted.has(w.instanceId)));
    for (const id of effects.ready) this.#markReady(id);
    this.#pump();
  }

  // ---------------------------------------------------------------- helpers

  #event(type: number, fields: Record<string, unknown>, at?: number, eventId = -1): HistoryEvent {
    return { EventType: type, EventId: eventId, IsPlayed: false, Timestamp: iso(at ?? this.#clock.now()), ...fields };
  }

  #function(name: string): FunctionInfo | undefined {
    try {
      return this.#host.get(name);
    } catch {
      return undefined;
    }
  }

  #requireLive(instanceId: string): InstanceRow {
    const row = this.#live.get(instanceId)?.row ?? this.#store.getInstance(instanceId);
    if (!row) throw new EngineError('not_found', `No instance with ID '${instanceId}' found.`);
    if (TERMINAL.has(row.status)) throw new EngineError('gone', `Instance '${instanceId}' is ${row.status}.`);
    const live = this.#load(instanceId);
    return live?.row ?? row;
  }

  #statusOf(row: InstanceRow, showInput: boolean): InstanceStatus {
    return {
      name: row.name,
      instanceId: row.id,
      runtimeStatus: row.status,
      input: showInput ? parseJson(row.input) : null,
      output: parseJson(row.output),
      customStatus: parseJson(row.customStatus),
      createdTime: iso(row.createdAt),
      lastUpdatedTime: iso(row.updatedAt),
    };
  }
}

function leafRecord(action: ActionWire): LeafRecord {
  const n = action.functionName ?? action.externalEventName ?? action.operation;
  return n === undefined ? { t: action.actionType } : { t: action.actionType, n };
}

function describeLeaf(leaf: LeafRecord): string {
  return `${actionTypeName(leaf.t)}${leaf.n !== undefined ? ` '${leaf.n}'` : ''}`;
}

function encodeInput(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function retryTracker(
  leaf: number,
  kind: RetryTracker['kind'],
  name: string,
  input: string | null,
  options: RetryOptionsWire,
  taskId: number,
  now: number,
): RetryTracker {
  return { leaf, kind, name, input, options, attempt: 1, taskId, phase: 'running', firstAttemptAt: now };
}
