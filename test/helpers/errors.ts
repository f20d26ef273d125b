import { AppError } from '../../src/domain/errors';

/** Awaits `p`, which must reject with an AppError, and returns that error (anything else fails the test). */
export async function appErrorOf(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a rejection with an AppError');
}
