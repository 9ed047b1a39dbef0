/**
 * The signing pipeline: `signHeaders → signature → writePrehash`. Pure: the timestamp is an input,
 * never read from a clock here.
 */
import { encodeBase64 } from "./base64.ts";
import { SigningInputError } from "./errors.ts";
import { type Body, requestPath, signingMethod, writePrehash } from "./prehash.ts";

/** The four headers both venues require. */
export interface AccessHeaders {
  "CB-ACCESS-KEY": string;
  "CB-ACCESS-PASSPHRASE": string;
  "CB-ACCESS-SIGN": string;
  "CB-ACCESS-TIMESTAMP": string;
}

/** Seconds-since-epoch bounds: 2001-09-09 .. 2286-11-20. A 13-digit value is a millisecond mix-up. */
const MIN_TIMESTAMP = 1_000_000_000;
const MAX_TIMESTAMP = 9_999_999_999;

/** Refuses anything but whole seconds since the epoch, with a message that says what is wrong. */
export function checkTimestamp(timestamp: number): number {
  if (!Number.isInteger(timestamp)) {
    throw new SigningInputError(`timestamp must be whole seconds since the epoch, got ${timestamp}`);
  }
  if (timestamp < MIN_TIMESTAMP || timestamp > MAX_TIMESTAMP) {
    const hint = timestamp > MAX_TIMESTAMP ? " (milliseconds? divide by 1000)" : "";
    throw new SigningInputError(`timestamp ${timestamp} is out of range${hint}`);
  }
  return timestamp;
}

/**
 * One reusable buffer for the bytes being MACed. `subtle.sign` copies its input before it returns (WebCrypto:
 * "get a copy of the bytes held by data"), so reuse is safe, and it saves an ArrayBuffer allocation per
 * signature, which in workerd costs about as much as the HMAC itself. Bodies over 1 MiB get their own buffer.
 */
let scratch = new Uint8Array(4096);
const SCRATCH_MAX = 1 << 20;

/**
 * The signer's core: base64(HMAC-SHA256(key, writePrehash(timestamp, method, path, body))), with no check on the
 * timestamp. Internal: not exported from the library entry. `signature` is exactly this after `checkTimestamp`;
 * it is exported from this module only so that the published vectors, whose timestamp is the legacy decimal
 * 1573653521.402 that `signature` refuses, run through the signer's own code (test/core/vectors.test.ts).
 * Throws synchronously on a bad method.
 */
export function macPrehash(
  key: CryptoKey,
  timestamp: number,
  method: string,
  path: string,
  body?: Body,
): Promise<string> {
  let buffer = scratch;
  let length = writePrehash(buffer, timestamp, method, path, body);
  while (length < 0) {
    buffer = new Uint8Array(buffer.length * 4);
    if (buffer.length <= SCRATCH_MAX) scratch = buffer;
    length = writePrehash(buffer, timestamp, method, path, body);
  }
  return crypto.subtle.sign("HMAC", key, buffer.subarray(0, length)).then(encodeBase64);
}

/**
 * base64(HMAC-SHA256(key, prehash)). Not an `async` function: on the hot path, one promise (the HMAC's) is cheaper
 * than two; bad input still arrives as a rejected promise.
 */
export function signature(
  key: CryptoKey,
  timestamp: number,
  method: string,
  path: string,
  body?: Body,
): Promise<string> {
  try {
    checkTimestamp(timestamp);
    return macPrehash(key, timestamp, method, path, body);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The signature of a market-data subscription (INTX's WebSocket feed; docs/protocol.md, "Market data"):
 * base64(HMAC-SHA256(key, time + apiKey + word + passphrase)), `time` in whole seconds and `word` the venue's
 * (its profile's `marketData.signingWord`). Internal: not exported from the library entry.
 */
export async function subscriptionSignature(identity: SigningIdentity, time: number, word: string): Promise<string> {
  checkTimestamp(time);
  const message = new TextEncoder().encode(`${time}${identity.apiKey}${word}${identity.passphrase}`);
  return encodeBase64(await crypto.subtle.sign("HMAC", identity.key, message));
}

/** What identifies the caller to the venue. The secret itself stays in the `CryptoKey`. */
export interface SigningIdentity {
  apiKey: string;
  passphrase: string;
  key: CryptoKey;
}

/** The four `CB-ACCESS-*` headers for a request to `url` (its path is signed, its query is not). */
export async function signHeaders(
  identity: SigningIdentity,
  request: { method: string; url: string | URL; body?: Body },
  timestamp: number,
): Promise<AccessHeaders> {
  if (!identity.apiKey) throw new SigningInputError("apiKey is required");
  const method = signingMethod(request.method);
  const sign = await signature(identity.key, timestamp, method, requestPath(request.url), request.body);
  return {
    "CB-ACCESS-KEY": identity.apiKey,
    "CB-ACCESS-PASSPHRASE": identity.passphrase,
    "CB-ACCESS-SIGN": sign,
    "CB-ACCESS-TIMESTAMP": String(timestamp),
  };
}

/**
 * A copy of `request` carrying the four `CB-ACCESS-*` headers for `timestamp`. The body is read once and sent as
 * the exact bytes that were signed.
 */
export async function signRequest(request: Request, identity: SigningIdentity, timestamp: number): Promise<Request> {
  const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
  const headers = new Headers(request.headers);
  const signed = await signHeaders(identity, { method: request.method, url: request.url, body }, timestamp);
  for (const [name, value] of Object.entries(signed)) headers.set(name, value);
  return new Request(request.url, {
    method: request.method,
    headers,
    body,
    redirect: "manual",
    signal: request.signal,
  });
}
