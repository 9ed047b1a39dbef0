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

/** Whether a response says it is JSON (both venues' APIs answer JSON, errors included). */
export function isJson(headers: Headers): boolean {
  return /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(headers.get("content-type") ?? "");
}

/**
 * The sample a response gives if it came from the venue's API: JSON, and neither a redirect nor a 5xx. An HTML
 * error page, a redirect or a 5xx may come from a proxy, gateway or dev server stamped by another machine's clock.
 */
export function venueSample(response: Response, tSend: number, tRecv: number): ClockSample | undefined {
  const { status, headers } = response;
  if (!isJson(headers) || (status >= 300 && status < 400) || status >= 500) return undefined;
  return sampleFromResponse(headers, tSend, tRecv);
}
