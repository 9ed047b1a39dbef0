/**
 * The Coinbase prehash: `timestamp + METHOD + requestPath + body` (docs/protocol.md, "Signing").
 * Pure and portable: runs unchanged in workerd, Node >= 22, Deno and browsers.
 */
import { SigningInputError } from "./errors.ts";

/** The request body as it goes on the wire: the exact string or bytes, or nothing. */
export type Body = string | Uint8Array | null | undefined;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const encoder = new TextEncoder();

/**
 * The path exactly as `fetch` puts it on the wire: WHATWG-serialised, percent-encoding kept,
 * no host and no query string (the protocol does not sign the query).
 */
export function requestPath(url: string | URL): string {
  try {
    return (typeof url === "string" ? new URL(url) : url).pathname;
  } catch {
    throw new SigningInputError(`not an absolute URL: ${JSON.stringify(String(url).slice(0, 200))}`);
  }
}

/** The methods both venues use, already in signing form: no regex on the hot path. */
const COMMON = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);

/** The upper-cased HTTP method; refuses anything that is not an HTTP token. */
export function signingMethod(method: string): string {
  if (COMMON.has(method)) return method;
  if (!TOKEN.test(method)) throw new SigningInputError(`not an HTTP method: ${JSON.stringify(method.slice(0, 40))}`);
  return method.toUpperCase();
}

/** The prehash as text, for display (CLI, debugging). Byte bodies are decoded as UTF-8 for display only. */
export function prehash(timestamp: number, method: string, path: string, body?: Body): string {
  const tail = body == null ? "" : typeof body === "string" ? body : new TextDecoder().decode(body);
  return `${timestamp}${signingMethod(method)}${path}${tail}`;
}

/**
 * Writes the prehash bytes (UTF-8 text, then a byte body's own bytes untouched) into `into`.
 * Returns the length written, or -1 when it does not fit. Plain ASCII (every timestamp, method and wire path,
 * and most JSON) is copied in JS: in workerd a TextEncoder call crosses into C++ and costs more than that.
 */
export function writePrehash(into: Uint8Array, timestamp: number, method: string, path: string, body?: Body): number {
  const at = writeText(into, 0, `${timestamp}${signingMethod(method)}${path}`);
  if (at < 0 || body == null) return at;
  if (typeof body === "string") return writeText(into, at, body);
  if (at + body.length > into.length) return -1;
  into.set(body, at);
  return at + body.length;
}

function writeText(into: Uint8Array, at: number, text: string): number {
  if (at + text.length > into.length) return -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) {
      const { read, written } = encoder.encodeInto(text, into.subarray(at));
      return read < text.length ? -1 : at + written;
    }
    into[at + i] = c;
  }
  return at + text.length;
}
