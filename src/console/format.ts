/**
 * The console's words for values: times in UTC with their age, sizes and durations with units, an account's guards
 * as one line, and an alert's sink results as sentences. Pure; page.ts puts them through `html`, which escapes them.
 */

/** "2026-12-06 21:41:17 UTC · 3 min ago" for an ISO time or epoch ms, against `now`. */
export function when(at: string | number, now: number): string {
  const ms = typeof at === "number" ? at : Date.parse(at);
  if (!Number.isFinite(ms)) return String(at);
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC · ${age(now - ms)}`;
}

/** "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago"; "in …" for a time ahead of `now`. */
export function age(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1_000) return "just now";
  const text =
    abs < 60_000
      ? `${Math.floor(abs / 1_000)} s`
      : abs < 3_600_000
        ? `${Math.floor(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${Math.floor(abs / 3_600_000)} h`
          : `${Math.floor(abs / 86_400_000)} d`;
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

/** "37,240 B". */
export const bytes = (n: number) => `${n.toLocaleString("en-US")} B`;

/** "412 ms", "1,204 ms". */
export const millis = (n: number) => `${Math.round(n).toLocaleString("en-US")} ms`;

/** A list of words, or a map of instrument pattern to limit ("BTC-PERP 0.5, *: 5"), as short text. */
function listOrLimits(value: unknown): string {
  if (Array.isArray(value)) return value.map(String).join(", ");
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    const specific = entries.filter(([k]) => k !== "*").map(([k, v]) => `${k} ${String(v)}`);
    const rest = entries.filter(([k]) => k === "*").map(([, v]) => `*: ${String(v)}`);
    if (specific.length > 0 && rest.length > 0) return `${specific.join(", ")} (${rest.join("")})`;
    return [...specific, ...rest].join(", ");
  }
  return String(value);
}

/** Each guard key's short form; an unknown key shows as `key: JSON`. */
const GUARD_WORDS: Record<string, (value: unknown) => string> = {
  instruments: listOrLimits,
  types: listOrLimits,
  tif: (v) => `tif ${listOrLimits(v)}`,
  close_only: (v) => (v === true ? "close only" : `close only ${listOrLimits(v)}`),
  max_size: (v) => `max size ${listOrLimits(v)}`,
  max_notional: (v) => `max notional ${listOrLimits(v)}`,
  max_orders_per_minute: (v) => `${String(v)}/min`,
};

/** "BTC-PERP, ETH-PERP; max size BTC-PERP 0.5 (*: 5); LIMIT, MARKET; 30/min", from the guards as configured. */
export function guardsSummary(guards: unknown): string {
  if (guards === null || typeof guards !== "object" || Array.isArray(guards)) return JSON.stringify(guards);
  return Object.entries(guards as Record<string, unknown>)
    .map(([key, value]) => GUARD_WORDS[key]?.(value) ?? `${key}: ${JSON.stringify(value)}`)
    .join("; ");
}

/** One sink's result as an alert's `sends` holds it (adapters/alerts.ts `recentAlerts`). */
interface Send {
  sink?: unknown;
  state?: unknown;
  attempts?: unknown;
  error?: unknown;
}

/** "local: sent", "slack: failed after 5 attempts: timeout", "slack: queued"; "no sink" without any. */
export function sendsText(sends: readonly unknown[]): string[] {
  if (sends.length === 0) return ["no sink"];
  return sends.map((raw) => {
    const s = (raw ?? {}) as Send;
    const attempts = Number(s.attempts);
    const tries = attempts > 0 ? ` after ${attempts} ${attempts === 1 ? "attempt" : "attempts"}` : "";
    const error = typeof s.error === "string" && s.error !== "" ? `: ${s.error}` : "";
    const state = String(s.state ?? "unknown");
    return `${String(s.sink ?? "?")}: ${state}${state === "failed" ? `${tries}${error}` : ""}`;
  });
}
