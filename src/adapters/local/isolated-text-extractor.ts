/**
 * `TextExtractor` that runs `LocalTextExtractor` in a worker thread under limits, so that no
 * upload can block or exhaust the process that serves every tenant's HTTP. Parsing a document
 * is CPU-bound and, for PDF, memory-bound in ways a few bytes can control (a 1 MB PDF of one
 * FlateDecode stream inflates to 1 GB inside pdf.js). The worker is bounded three ways:
 * - time: past `timeoutMs` it is terminated (termination interrupts running JavaScript);
 * - memory: its V8 heap by `resourceLimits`, and its ArrayBuffers (where pdf.js inflates
 *   streams; `resourceLimits` does not count them) by a guard in the worker that refuses an
 *   allocation past `maxArrayBufferMb`;
 * - output: extracted text longer than `maxTextChars` is refused.
 * A blown limit is a property of the document, not of the moment, so it is thrown as
 * `payload_too_large`, which the indexer treats as permanent: the document is marked failed
 * with the reason and the message is completed, never redelivered.
 *
 * One long-lived worker, one extraction at a time: starting a worker and loading pdf.js costs
 * ~100–200 ms, which a worker per document would pay every time; a pool would multiply the
 * memory limits by its size, and indexing is background work that a queue of one serves.
 * The worker is replaced after it is terminated or dies, and does not keep the process alive
 * while idle (`unref`).
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppError, type ErrorCode } from '../../domain/errors';
import type { ExtractedText, TextExtractor } from '../../ports/text-extractor';

export interface ExtractionLimits {
  /** Wall-clock time of one extraction, queueing excluded. */
  timeoutMs: number;
  /** The worker's V8 old-generation heap. */
  maxHeapMb: number;
  /** The worker's ArrayBuffer memory (inflated PDF streams live there). */
  maxArrayBufferMb: number;
  /** Characters of extracted text. */
  maxTextChars: number;
}

/**
 * 20 s stays well inside a Service Bus lock (60 s by default), so a document at the limit
 * fails instead of losing its lock and being redelivered. 10 Mi characters admits every text
 * upload the 10 MiB document limit admits. 256 MiB of heap is ample for real documents of that
 * size; 128 MiB of buffers holds a 40 MiB inflated stream (pdf.js grows buffers by doubling and
 * copying), and reaching it costs a bomb ~4 s of the worker's time (pdf.js inflates in JS).
 */
export const DEFAULT_EXTRACTION_LIMITS: ExtractionLimits = {
  timeoutMs: 20_000,
  maxHeapMb: 256,
  maxArrayBufferMb: 128,
  maxTextChars: 10 * 1024 * 1024,
};

/** What the worker is given at start (`workerData`). */
export interface WorkerSetup {
  entry: string;
  limits: ExtractionLimits;
}

export interface ExtractionRequest {
  id: number;
  bytes: Uint8Array;
  contentType: string;
}

export type ExtractionReply =
  { id: number; ok: ExtractedText } | { id: number; error: { code?: ErrorCode; message: string }; limit?: boolean };

/**
 * Loads the worker module. From the build it is plain JavaScript. From the TypeScript sources
 * (vitest runs them, and a worker thread is outside its transform) each `.ts` module is
 * compiled on load with typescript's `transpileModule`, as ts-node's transpile-only mode does;
 * typescript is a dev dependency and this branch is never taken in dist.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
if (workerData.entry.endsWith('.ts')) {
  const fs = require('node:fs');
  const ts = require(workerData.typescript);
  const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  require.extensions['.ts'] = (module, file) =>
    module._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: options, fileName: file }).outputText, file);
}
require(workerData.entry);
`;

function defaultEntry(): string {
  return path.join(__dirname, `extraction-worker${path.extname(__filename)}`);
}

export class IsolatedTextExtractor implements TextExtractor {
  private readonly limits: ExtractionLimits;
  private worker: { thread: Worker; ready: Promise<void> } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;

  constructor(limits: Partial<ExtractionLimits> = {}) {
    this.limits = { ...DEFAULT_EXTRACTION_LIMITS, ...limits };
  }

  /**
   * As `TextExtractor.extract`; also throws AppError `payload_too_large` when the document
   * needs more time, memory or text than the limits allow, and `unavailable` when the worker
   * cannot be started or dies for another reason (transient: the indexer retries).
   */
  extract(bytes: Uint8Array, contentType: string): Promise<ExtractedText> {
    const run = this.queue.then(() => this.run(bytes, contentType));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops the worker (tests; a later `extract` starts a new one). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.thread.terminate();
  }

  /** Starts a worker; `ready` resolves once it has loaded (its start is not part of any timeout). */
  private start(): { thread: Worker; ready: Promise<void> } {
    const entry = defaultEntry();
    const setup: WorkerSetup & { typescript?: string } = { entry, limits: this.limits };
    if (entry.endsWith('.ts')) setup.typescript = require.resolve('typescript');
    const thread = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: setup,
      resourceLimits: { maxOldGenerationSizeMb: this.limits.maxHeapMb, maxYoungGenerationSizeMb: 32 },
      stdout: false,
      stderr: false,
    });
    const ready = new Promise<void>((resolve, reject) => {
      thread.once('message', () => {
        thread.unref(); // { ready: true }; from now on only a running extraction holds the process
        resolve();
      });
      thread.once('error', (err) =>
        reject(new AppError('unavailable', `the text extraction worker did not start: ${err.message}`, { cause: err })),
      );
      thread.once('exit', (code) =>
        reject(new AppError('unavailable', `the text extraction worker did not start (exit ${code})`)),
      );
    });
    ready.catch(() => undefined);
    const started = { thread, ready };
    thread.on('exit', () => {
      if (this.worker === started) this.worker = undefined;
    });
    return started;
  }

  private async run(bytes: Uint8Array, contentType: string): Promise<ExtractedText> {
    const started = (this.worker ??= this.start());
    try {
      await started.ready;
    } finally {
      if (this.worker !== started) void started.thread.terminate();
    }
    const worker = started.thread;
    const id = ++this.nextId;
    return new Promise<ExtractedText>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.unref();
      };
      const fail = (err: Error, terminate: boolean): void => {
        done();
        if (terminate) {
          if (this.worker === started) this.worker = undefined;
          void worker.terminate();
        }
        reject(err);
      };
      const onMessage = (reply: ExtractionReply): void => {
        if (reply.id !== id) return;
        if ('ok' in reply) {
          done();
          resolve(reply.ok);
          return;
        }
        const { code, message } = reply.error;
        fail(code ? new AppError(code, message) : new Error(message), reply.limit === true);
      };
      const onError = (err: Error & { code?: string }): void => {
        fail(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new AppError(
                'payload_too_large',
                `the document needs more than ${this.limits.maxHeapMb} MiB of memory to extract its text`,
                { cause: err },
              )
            : new AppError('unavailable', `text extraction failed: ${err.message}`, { cause: err }),
          true,
        );
      };
      const onExit = (code: number): void =>
        fail(new AppError('unavailable', `the text extraction worker exited (code ${code})`), false);
      const timer = setTimeout(
        () =>
          fail(
            new AppError(
              'payload_too_large',
              `extracting the document's text took longer than ${this.limits.timeoutMs / 1000} s; it was stopped`,
            ),
            true,
          ),
        this.limits.timeoutMs,
      );
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.ref();
      const request: ExtractionRequest = { id, bytes: new Uint8Array(bytes), contentType };
      worker.postMessage(request, [request.bytes.buffer as ArrayBuffer]);
    });
  }
}
