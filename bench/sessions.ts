/**
 * Sessions benchmark (issue 8): N concurrent coaching sessions on ONE devhost (`npm start`
 * with only the us boundary), each sending an exchange every 3 s for D seconds, persona
 * answered by a fake OpenAI-compatible model with a fixed 200 ms delay. Then every session is
 * ended and must reach `completed` with an evaluation (reasoning model: the same fake,
 * answering valid JSON verdicts).
 *
 * Exchange overhead = client-measured latency − the fake model's answer time (measured at
 * the fake, per request: mean over the run, ~200 ms). No lost exchange = every 200 answered
 * is in the session's final exchange count.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/sessions.js --sessions 1200 --interval-ms 3000 --duration 60
 * prints one JSON line. Loopback only; bounded (start + duration + a 180 s drain limit).
 */
import { mintDevToken } from '../devhost/token';
import { startFakeOpenAi } from './lib/fake-openai';
import { machine, peakRssOfPid, summarize } from './lib/stats';
import { processesMentioning, startSystem } from './lib/system';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SESSIONS = arg('sessions', 1200);
const INTERVAL = arg('interval-ms', 3000);
const DURATION = arg('duration', 60) * 1000;
const MODEL_MS = arg('model-delay-ms', 200);
/** `--profile-dir <dir>`: CPU-profile the processes (the boundary devhost inherits it through fork). */
const PROFILE_DIR = process.argv.includes('--profile-dir') ? process.argv[process.argv.indexOf('--profile-dir') + 1] : undefined;

async function main(): Promise<void> {
  const fake = await startFakeOpenAi({
    chatDelayMs: MODEL_MS,
    record: false,
    replyText: (deployment) =>
      deployment === 'o4-mini'
        ? '{"score":0.7,"rationale":"Benchmark verdict."}'
        : 'That is a fair point. What would you suggest as a next step?',
  });
  const profiling = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const system = await startSystem(
    {
      MERIDIAN_SERVED_REGIONS: 'eastus,westus2',
      MERIDIAN_OPENAI_BASE_URL: `${fake.url}/v1`,
      MERIDIAN_RATE_LIMIT_PER_MINUTE: '100000',
      LOG_LEVEL: 'error',
    },
    90_000,
    { nodeArgs: profiling },
  );
  const url = system.url;
  /** The us boundary devhost. */
  const boundaryPid = (): number | undefined => processesMentioning(system.dataDir, 'boundary.js')[0];

  const tokens = await Promise.all(
    Array.from({ length: SESSIONS }, (_, i) => mintDevToken({ tenant: 'tenant-acme-corp', user: `bench-${i}`, roles: [] })),
  );
  const post = async (token: string, p: string, body?: unknown) => {
    const res = await fetch(`${url}${p}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const ids: string[] = [];
  for (let i = 0; i < SESSIONS; i += 50) {
    const batch = await Promise.all(
      tokens.slice(i, i + 50).map((t) => post(t, '/api/sessions', { scenario: 'sales-discovery' })),
    );
    for (const b of batch) {
      if (b.status !== 201) throw new Error(`start failed: ${JSON.stringify(b)}`);
      ids.push(b.body['sessionId'] as string);
    }
  }

  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const ok = new Array<number>(SESSIONS).fill(0);
  const t0 = Date.now();
  const inflight: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    let done = 0;
    for (let i = 0; i < SESSIONS; i++) {
      const offset = (i * INTERVAL) / SESSIONS;
      let n = 0;
      const tick = () => {
        const at = t0 + offset + n * INTERVAL;
        if (at - t0 >= DURATION) {
          if (++done === SESSIONS) resolve();
          return;
        }
        n += 1;
        setTimeout(
          () => {
            const start = Date.now();
            inflight.push(
              post(tokens[i] as string, `/api/sessions/${ids[i]}/messages`, {
                text: `What does step ${n} of your process look like?`,
              })
                .then((r) => {
                  if (r.status === 200) {
                    ok[i] = (ok[i] as number) + 1;
                    latencies.push(Date.now() - start);
                  } else errors[r.status] = (errors[r.status] ?? 0) + 1;
                })
                .catch((e: Error) => {
                  errors[e.message] = (errors[e.message] ?? 0) + 1;
                }),
            );
            tick();
          },
          Math.max(0, at - Date.now()),
        );
      };
      tick();
    }
  });
  await Promise.all(inflight);
  const loadSeconds = (Date.now() - t0) / 1000;
  const rssDuringLoad = boundaryPid() ? peakRssOfPid(boundaryPid() as number) : undefined;

  // End every session; wait for each to complete with an evaluation.
  for (let i = 0; i < SESSIONS; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map((id, k) => post(tokens[i + k] as string, `/api/sessions/${id}/end`)));
  }
  const drainStart = Date.now();
  const final = new Map<string, { status: string; exchanges: number; evaluation?: unknown }>();
  while (final.size < SESSIONS && Date.now() - drainStart < 180_000) {
    for (let i = 0; i < SESSIONS; i += 100) {
      await Promise.all(
        ids.slice(i, i + 100).map(async (id, k) => {
          if (final.has(id)) return;
          const res = await fetch(`${url}/api/sessions/${id}`, { headers: { authorization: `Bearer ${tokens[i + k]}` } });
          const s = (await res.json()) as { status: string; exchanges: number; evaluation?: unknown };
          if (s.status !== 'active' && s.status !== 'evaluating') final.set(id, s);
        }),
      );
    }
    if (final.size < SESSIONS) await new Promise((r) => setTimeout(r, 500));
  }
  let lost = 0;
  let completedWithEvaluation = 0;
  ids.forEach((id, i) => {
    const s = final.get(id);
    if (s && s.exchanges !== ok[i]) lost += Math.abs((ok[i] as number) - s.exchanges);
    if (s?.status === 'completed' && s.evaluation) completedWithEvaluation += 1;
  });
  const lat = summarize(latencies);
  const overhead = summarize(latencies.map((l) => l - MODEL_MS));
  console.log(
    JSON.stringify({
      bench: 'sessions',
      sessions: SESSIONS,
      intervalMs: INTERVAL,
      durationS: DURATION / 1000,
      modelDelayMs: MODEL_MS,
      exchanges: latencies.length,
      expected: SESSIONS * Math.ceil(DURATION / INTERVAL),
      rate: Number((latencies.length / loadSeconds).toFixed(1)),
      errors,
      latencyMs: lat,
      overheadMs: overhead,
      lostExchanges: lost,
      ended: final.size,
      completedWithEvaluation,
      drainSeconds: Number(((Date.now() - drainStart) / 1000).toFixed(1)),
      rssMiB: rssDuringLoad,
      machine: machine(),
    }),
  );
  await system.stop();
  await fake.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
