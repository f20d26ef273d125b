/**
 * The fake OpenAI-compatible server (bench/lib/fake-openai.ts) as a child process pinned to a
 * core, as the chat and model-client benchmarks run it beside the process they measure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** Resolves with the first match of `pattern` in a child's output; rejects if it exits first. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 120_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out.slice(-2000)}`)), timeoutMs);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}: ${out.slice(-2000)}`)));
  });
}

/** Starts the fake on `core` (taskset); `url` is its `/v1` base. */
export async function startFakeOpenAiProcess(options: {
  core: number;
  chatDelayMs: number;
  embeddingDelayMs: number;
}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    'taskset',
    [
      '-c',
      String(options.core),
      process.execPath,
      path.join(__dirname, 'fake-openai.js'),
      '--port',
      '0',
      '--chat-delay-ms',
      String(options.chatDelayMs),
      '--embedding-delay-ms',
      String(options.embeddingDelayMs),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const m = await waitForOutput(child, /READY (\d+)/, 'fake OpenAI server');
  return { child, url: `http://127.0.0.1:${m[1]}/v1` };
}
