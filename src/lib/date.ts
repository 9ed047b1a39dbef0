/**
 * A clock sample from a response's headers. Only the IMF-fixdate form of `Date` is read (RFC 9110 §5.6.7, the one
 * servers must send, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`), strictly: a header in any other shape, or with
 * out-of-range fields or a wrong weekday, is not a clock reading we can trust, so it yields no sample rather than
 * a guess. A response with `Age` came from a cache and its `Date` is not the venue's now.
 */
import type { ClockSample } from "./estimator.ts";

const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Seconds since the epoch of an IMF-fixdate, or undefined if `value` is not exactly one. */
export function parseImfFixdate(value: string): number | undefined {
  const m = IMF_FIXDATE.exec(value);
  if (!m) return undefined;
  const [, weekday, day = "", month = "", year = "", hour = "", minute = "", second = ""] = m;
  const ms = Date.UTC(Number(year), MONTHS.indexOf(month), Number(day), Number(hour), Number(minute), Number(second));
  const date = new Date(ms);
  // Date.UTC rolls 31 Feb over into March and 24:00 into the next day: a rolled field means an invalid header.
  if (
    date.getUTCDate() !== Number(day) ||
    date.getUTCHours() !== Number(hour) ||
    date.getUTCMinutes() !== Number(minute) ||
    Number(second) > 59 ||
    DAYS[date.getUTCDay()] !== weekday
  ) {
    return undefined;
  }
  return ms / 1000;
}

/** The sample a response gives, or undefined when it has no usable `Date` or came from a cache (`Age`). */
export function sampleFromResponse(headers: Headers, tSend: number, tRecv: number): ClockSample | undefined {
  if (headers.has("age")) return undefined;
  const value = headers.get("date");
  const date = value === null ? undefined : parseImfFixdate(value);
  return date === undefined ? undefined : { tSend, tRecv, date };
}

/** Whether a response says it is JSON (both venues' APIs answer JSON, errors included, when asked for it). */
export function isJson(headers: Headers): boolean {
  return /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(headers.get("content-type") ?? "");
}

/**
 * Whether an answer came from the venue's API rather than something in front of it. The venues' API servers answer
 * JSON, or plain text when the request did not ask for JSON (INTX's Javalin renders its errors so); skewguard asks
 * for JSON, but learns from a plain-text refusal all the same. What is not theirs: a redirect, a 5xx (a proxy or
 * load balancer may answer it), and an HTML or other page (a gateway's, a CDN's, a dev server's), each possibly
 * stamped by another machine's clock. docs/clock.md says which answers teach the clock.
 */
export function fromVenueApi(response: Response): boolean {
  const { status, headers } = response;
  if ((status >= 300 && status < 400) || status >= 500) return false;
  const type = headers.get("content-type");
  return type === null || isJson(headers) || /^text\/plain\s*(?:;|$)/i.test(type);
}

/** The sample a response gives if it came from the venue's API (`fromVenueApi`), else undefined. */
export function venueSample(response: Response, tSend: number, tRecv: number): ClockSample | undefined {
  return fromVenueApi(response) ? sampleFromResponse(response.headers, tSend, tRecv) : undefined;
}
