/**
 * The worker thread of `IsolatedTextExtractor` (see there): extracts one document at a time
 * with `LocalTextExtractor` and replies with the text or the error. Loaded by the bootstrap in
 * isolated-text-extractor.ts, never imported.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isAppError } from '../../domain/errors';
import type { ExtractionReply, ExtractionRequest, WorkerSetup } from './isolated-text-extractor';
import { LocalTextExtractor } from './text-extractor';

const { limits } = workerData as WorkerSetup;
const MiB = 1024 * 1024;
type ErrorReply = Extract<ExtractionReply, { error: unknown }>['error'];

/**
 * ArrayBuffer memory is outside V8's heap limit, and pdf.js inflates streams into ever larger
 * `Uint8Array`s (doubling), so large typed-array allocations are checked against the limit
 * here. The guard throws, but pdf.js may swallow an error in a content stream and carry on
 * (re-reading the stream, up to the limit again), so the first hit is reported at once: the
 * parent terminates this worker on that reply instead of waiting for pdf.js to finish.
 */
let overLimit = false;
/** The request being extracted. */
let current: number | undefined;
type Ctor = new (...args: never[]) => object;
function guard<T extends Ctor>(ctor: T): T {
  return new Proxy(ctor, {
    construct(target, args: never[], newTarget: Ctor) {
      const size = args[0];
      if (typeof size === 'number' && size >= MiB && process.memoryUsage().arrayBuffers + size > limits.maxArrayBufferMb * MiB) {
        if (!overLimit && current !== undefined) reply(current, memoryLimit()); // now: the parent stops this worker
        overLimit = true;
        throw new RangeError(`buffer memory limit of ${limits.maxArrayBufferMb} MiB reached`);
      }
      return Reflect.construct(target, args, newTarget);
    },
  });
}
globalThis.Uint8Array = guard(Uint8Array);
globalThis.ArrayBuffer = guard(ArrayBuffer);

const extractor = new LocalTextExtractor();
const port = parentPort;
if (!port) throw new Error('extraction-worker.ts runs as a worker thread only');

port.on('message', (request: ExtractionRequest) => {
  overLimit = false;
  current = request.id;
  void extractor.extract(request.bytes, request.contentType).then(
    (ok): void => {
      if (overLimit) return reply(request.id, memoryLimit());
      if (ok.text.length > limits.maxTextChars) {
        return reply(request.id, {
          code: 'payload_too_large',
          message: `the document's text is longer than ${limits.maxTextChars} characters`,
        });
      }
      port.postMessage({ id: request.id, ok } satisfies ExtractionReply);
    },
    (err: unknown): void => {
      if (overLimit) return reply(request.id, memoryLimit());
      reply(
        request.id,
        isAppError(err)
          ? { code: err.code, message: err.message }
          : { message: err instanceof Error ? err.message : String(err) },
      );
    },
  );
});

port.postMessage({ ready: true });

function memoryLimit(): { code: 'payload_too_large'; message: string; limit: true } {
  return {
    code: 'payload_too_large',
    message: `the document needs more than ${limits.maxArrayBufferMb} MiB of memory to extract its text`,
    limit: true,
  };
}

function reply(id: number, error: ErrorReply & { limit?: boolean }): void {
  const { limit, ...rest } = error;
  port?.postMessage({ id, error: rest, ...(limit ? { limit } : {}) } satisfies ExtractionReply);
}
