/**
 * A clock sample from a response's headers. FIRST VERSION (the clock issue replaces it with a strict parser).
 */
import type { ClockSample } from "./estimator.ts";

/** The sample a response gives, or undefined when it has no usable `Date` or came from a cache (`Age`). */
export function sampleFromResponse(headers: Headers, tSend: number, tRecv: number): ClockSample | undefined {
  if (headers.has("age")) return undefined;
  const value = headers.get("date");
  if (!value) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return undefined;
  return { tSend, tRecv, date: Math.floor(ms / 1000) };
}
