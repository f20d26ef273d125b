/**
 * devhost's stand-in for the `@azure/functions-core` module that the real Node.js worker
 * provides. `@azure/functions` requires it once (and caches a miss), so `installFunctionsCore`
 * must run before the app's first `app.*` call. Only the parts of the worker contract that a
 * host needs are declared here (see the library's types-core declarations).
 */
import Module from 'node:module';

export type RpcLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type RpcLogCategory = 'user' | 'system' | 'customMetric';

export interface RpcHttpData {
  method?: string | null;
  url?: string | null;
  headers?: Record<string, string> | null;
  body?: RpcTypedData | null;
  params?: Record<string, string> | null;
  statusCode?: string | null;
  query?: Record<string, string> | null;
  cookies?: unknown[] | null;
}

export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  http?: RpcHttpData | null;
  int?: number | null;
  double?: number | null;
  collectionString?: { string?: string[] | null } | null;
}

export interface RpcBindingInfo {
  type?: string | null;
  direction?: 'in' | 'out' | 'inout' | null;
  dataType?: string | null;
  [option: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: {
    maxRetryCount?: number | null;
    strategy?: string | null;
    retryStrategy?: string | null;
    delayInterval?: unknown;
  } | null;
}

export type FunctionCallback = (...args: unknown[]) => unknown;

export interface RpcParameterBinding {
  name: string;
  data: RpcTypedData;
}

export interface RpcInvocationRequest {
  invocationId?: string | null;
  functionId?: string | null;
  inputData?: RpcParameterBinding[] | null;
  triggerMetadata?: Record<string, RpcTypedData> | null;
  traceContext?: { traceParent?: string | null; traceState?: string | null; attributes?: Record<string, string> } | null;
  retryContext?: { retryCount?: number | null; maxRetryCount?: number | null } | null;
}

export interface RpcInvocationResponse {
  invocationId?: string | null;
  outputData?: RpcParameterBinding[] | null;
  returnValue?: RpcTypedData | null;
}

export interface CoreInvocationContext {
  invocationId: string;
  request: RpcInvocationRequest;
  metadata: FunctionMetadata;
  state?: 'preInvocationHooks' | 'postInvocationHooks' | 'invocation';
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void;
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreContext: CoreInvocationContext): InvocationModel | Promise<InvocationModel>;
  getCapabilities?(defaults: Record<string, string>): Record<string, string> | Promise<Record<string, string>>;
}

export type HookName = 'preInvocation' | 'postInvocation' | 'appStart' | 'appTerminate' | 'log';
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

class Disposable {
  static from(...items: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  #fn: (() => unknown) | undefined;
  constructor(fn: () => unknown) {
    this.#fn = fn;
  }
  dispose(): unknown {
    const fn = this.#fn;
    this.#fn = undefined;
    return fn?.();
  }
}

export type LogSink = (level: RpcLogLevel, category: RpcLogCategory, message: string, invocationId?: string) => void;

/** What devhost keeps of the app: its functions, hooks and programming model. */
export class FunctionsCore {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks = new Map<HookName, HookCallback[]>();
  programmingModel: ProgrammingModel | undefined;
  logSink: LogSink = () => undefined;

  /** The object handed to the app as `@azure/functions-core`. */
  readonly module = {
    version: '4.0.0-devhost',
    hostVersion: '4.0.0-devhost',
    Disposable,
    registerFunction: (metadata: FunctionMetadata, callback: FunctionCallback): Disposable => {
      if (this.functions.has(metadata.name)) {
        throw new Error(`A function named "${metadata.name}" is already registered`);
      }
      this.functions.set(metadata.name, { metadata, callback });
      return new Disposable(() => this.functions.delete(metadata.name));
    },
    registerHook: (name: HookName, callback: HookCallback): Disposable => {
      const list = this.hooks.get(name) ?? [];
      list.push(callback);
      this.hooks.set(name, list);
      return new Disposable(() => {
        const i = list.indexOf(callback);
        if (i >= 0) list.splice(i, 1);
      });
    },
    setProgrammingModel: (model: ProgrammingModel): void => {
      this.programmingModel = model;
    },
    getProgrammingModel: (): ProgrammingModel | undefined => this.programmingModel,
    log: (level: RpcLogLevel, category: RpcLogCategory, message: string): void => {
      this.logSink(level, category, message);
    },
  };
}

type RequireFn = (this: NodeJS.Module, id: string) => unknown;
let installed: FunctionsCore | undefined;

/**
 * Makes `require('@azure/functions-core')` resolve to `core.module` in this process, the way
 * the worker does, by wrapping `Module.prototype.require`. One core per process.
 */
export function installFunctionsCore(core: FunctionsCore): void {
  if (installed) {
    if (installed === core) return;
    throw new Error('A functions core is already installed in this process');
  }
  installed = core;
  const proto = Module.prototype as unknown as { require: RequireFn };
  const original = proto.require;
  proto.require = function require(this: NodeJS.Module, id: string): unknown {
    if (id === '@azure/functions-core') return core.module;
    return original.call(this, id);
  };
}
