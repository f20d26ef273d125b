/** The one manual clock (src/adapters/local/clock.ts), re-exported for tests. */
export { ManualClock } from '../../src/adapters/local/clock';
