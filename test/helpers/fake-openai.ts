import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi } from '../../bench/lib/fake-openai';

/**
 * One fake OpenAI-compatible server for a test file, reset before each test; call at the top
 * level of the file and read the server through the returned getter.
 */
export function useFakeOpenAi(): () => FakeOpenAi {
  let fake: FakeOpenAi | undefined;
  beforeAll(async () => {
    fake = await startFakeOpenAi();
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(() => fake?.reset());
  return () => {
    if (!fake) throw new Error('the fake OpenAI server is not running');
    return fake;
  };
}
