/**
 * The one "promise or timeout": what a cold client waits for (the shared estimate, a clock probe) is waited for at
 * most so long, and then left to finish on its own.
 */

/** `promise`'s value, or undefined if it has not settled within `ms` (a rejection passes through). No timer is left. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
