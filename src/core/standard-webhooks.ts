/**
 * Standard Webhooks (standardwebhooks.com) with WebCrypto: the signed content is `${id}.${timestamp}.${body}`,
 * HMAC-SHA256 keyed by the base64 part of a `whsec_` secret, sent as space-separated `v1,<base64>` signatures
 * (several, so keys can rotate). Verification uses `crypto.subtle.verify` (constant time) with an injectable clock.
 */
import { decodeBase64, encodeBase64 } from "../lib/base64.ts";
import { ConfigError } from "../lib/errors.ts";

const encoder = new TextEncoder();

/** The HMAC key of a `whsec_…` secret (the prefix is optional, as in the reference library). */
export async function webhookKey(secret: string, binding = "webhook secret"): Promise<CryptoKey> {
  const bytes = decodeBase64(secret.startsWith("whsec_") ? secret.slice(6) : secret);
  if (!bytes || bytes.byteLength === 0) throw new ConfigError(binding, "must be whsec_ followed by base64");
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function signedContent(id: string, timestamp: number, body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${id}.${timestamp}.`);
  const tail = typeof body === "string" ? encoder.encode(body) : body;
  const content = new Uint8Array(head.byteLength + tail.byteLength);
  content.set(head);
  content.set(tail, head.byteLength);
  return content;
}

/** The three headers a sender attaches, signed with a `whsec_` secret or its imported key. `timestamp` in seconds. */
export async function signWebhook(
  secret: string | CryptoKey,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<{ "webhook-id": string; "webhook-timestamp": string; "webhook-signature": string }> {
  const key = typeof secret === "string" ? await webhookKey(secret) : secret;
  const mac = await crypto.subtle.sign("HMAC", key, signedContent(id, timestamp, body));
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${encodeBase64(mac)}` };
}

/** At most this many signatures in `webhook-signature` (rotation needs two or three) and this many characters. */
export const MAX_SIGNATURES = 8;
export const MAX_SIGNATURE_HEADER = 1024;

/** Why a `webhook-signature` header is too big to check, or undefined: bounds the work done before a 401. */
export function oversizedSignatures(header: string | null): string | undefined {
  if (header === null) return undefined;
  if (header.length > MAX_SIGNATURE_HEADER) return `webhook-signature is over ${MAX_SIGNATURE_HEADER} characters`;
  if (header.split(" ").length > MAX_SIGNATURES) return `webhook-signature has more than ${MAX_SIGNATURES} signatures`;
  return undefined;
}

export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from now, either way. Default 300 s. */
  toleranceSeconds?: number;
  /** Local epoch milliseconds. */
  now?: number;
}

/**
 * Whether the headers carry a valid signature of `body` by `secret` (a `whsec_` string, or its key from
 * `webhookKey`), with a timestamp within tolerance.
 * Any malformed part is simply "not valid": the caller answers 401 without saying which part failed.
 */
export async function verifyWebhook(
  secret: string | CryptoKey,
  headers: Headers,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): Promise<boolean> {
  const id = headers.get("webhook-id");
  const stamp = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  if (!id || !stamp || !signatures || !/^\d{1,12}$/.test(stamp)) return false;
  const timestamp = Number(stamp);
  const now = (options.now ?? Date.now()) / 1000;
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const key = typeof secret === "string" ? await webhookKey(secret) : secret;
  const content = signedContent(id, timestamp, body);
  if (oversizedSignatures(signatures)) return false;
  for (const candidate of signatures.split(" ")) {
    const [version, encoded] = candidate.split(",", 2);
    if (version !== "v1" || encoded === undefined) continue;
    const mac = decodeBase64(encoded);
    if (mac?.byteLength !== 32) continue;
    if (await crypto.subtle.verify("HMAC", key, mac, content)) return true;
  }
  return false;
}
