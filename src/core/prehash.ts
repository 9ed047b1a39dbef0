/**
 * The Coinbase prehash: `timestamp + METHOD + requestPath + body` (PROTOCOL.md, "Signing").
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

/** The upper-cased HTTP method; refuses anything that is not an HTTP token. */
export function signingMethod(method: string): string {
  if (!TOKEN.test(method)) throw new SigningInputError(`not an HTTP method: ${JSON.stringify(method.slice(0, 40))}`);
  return method.toUpperCase();
}

/** The prehash as text, for display (CLI, debugging). Byte bodies are decoded as UTF-8 for display only. */
export function prehash(timestamp: number, method: string, path: string, body?: Body): string {
  const tail = body == null ? "" : typeof body === "string" ? body : new TextDecoder().decode(body);
  return `${timestamp}${signingMethod(method)}${path}${tail}`;
}

/** The prehash as the exact bytes that are MACed: UTF-8 head, then the body's own bytes untouched. */
export function prehashBytes(timestamp: number, method: string, path: string, body?: Body): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${timestamp}${signingMethod(method)}${path}`) as Uint8Array<ArrayBuffer>;
  if (body == null || body.length === 0) return head;
  const tail = typeof body === "string" ? encoder.encode(body) : body;
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}
