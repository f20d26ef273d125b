/**
 * Node/V8 flags for a boundary devhost process, by the cores it may run on.
 *
 * On one core V8's background GC threads (concurrent marking, parallel scavenging) cannot run
 * beside the app: they take the core from the event loop in scheduler slices. Under the chat
 * benchmark (one devhost pinned to one core) each major GC's concurrent phase was a ~100 ms
 * stretch of slow requests every few seconds, which set the p99. `--single-threaded-gc` does
 * that work on the main thread in incremental steps instead (bench/RESULTS-chat.md). With
 * more cores V8's defaults are kept. In Azure the same flag can be given to a one-core worker
 * through the `languageWorkers__node__arguments` app setting.
 */
export function boundaryNodeArgs(cores: number): string[] {
  return cores <= 1 ? ['--single-threaded-gc'] : [];
}
