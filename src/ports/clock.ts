/** Time, as the app sees it. Locally devhost can make it virtual (MERIDIAN_CLOCK=virtual). */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}
