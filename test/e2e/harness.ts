/**
 * The end-to-end tests' view of the system: `npm start` on PORT=0 with its own data dir, so
 * e2e test files run in parallel (bench/lib/system.ts, shared with the benchmarks).
 */
export { processesMentioning, ROOT, startSystem, type RunningSystem, type StartOptions } from '../../bench/lib/system';
