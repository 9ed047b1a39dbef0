/**
 * Structured logging: one JSON object per line. Callers pass only fields that are safe to print;
 * values under names that look secret are redacted as a second line of defence.
 */

const SECRET_NAME = /secret|passphrase|sign|prehash|token|authorization|password/i;

export type Level = "debug" | "info" | "warn" | "error";

/** Writes one JSON log line. Never pass secret material; a field whose name looks secret is replaced. */
export function log(level: Level, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, ...fields }, (key, value) =>
    key !== "" && SECRET_NAME.test(key) && typeof value === "string" ? "[redacted]" : value,
  );
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

/** What to log about an unexpected error: its class name only (a message may carry input). */
export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
