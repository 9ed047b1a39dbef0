/**
 * HMAC key import, with a small cache so the hot path never calls `importKey` twice for one secret.
 * The cache is keyed by a fingerprint, never by the secret itself, and holds at most `capacity` keys.
 */
import { decodeBase64 } from "./base64.ts";
import { ConfigError } from "./errors.ts";

/** How a venue's secret turns into HMAC key bytes (docs/protocol.md, "Signing": base64 by default; raw for some samples). */
export type SecretEncoding = "base64" | "raw";

/** The key bytes for `secret`, or a ConfigError naming `binding` when it is not valid under `encoding`. */
export function secretBytes(secret: string, encoding: SecretEncoding, binding: string): Uint8Array<ArrayBuffer> {
  if (secret.length === 0) throw new ConfigError(binding, "is empty");
  if (encoding === "raw") return new TextEncoder().encode(secret) as Uint8Array<ArrayBuffer>;
  const bytes = decodeBase64(secret.trim());
  if (!bytes || bytes.length === 0) {
    throw new ConfigError(
      binding,
      "is not valid base64 (standard alphabet, padded). Paste the secret exactly as Coinbase showed it, " +
        "or set the venue's *_SECRET_ENCODING to raw if it is meant to be used as-is.",
    );
  }
  return bytes;
}

/** Imports key bytes as a non-extractable HMAC-SHA256 signing key. */
export function importHmacKey(bytes: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/**
 * Two 32-bit FNV-1a passes with different offset bases: a cheap, synchronous 64-bit fingerprint, so a cache
 * lookup costs no crypto call (and no BigInt arithmetic) on the signing hot path.
 */
function fingerprint(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13);
  }
  return `${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}`;
}

/** A bounded LRU of imported keys. Entries are keyed by (encoding, length, fingerprint of the secret). */
export class KeyCache {
  /** A settled import is stored as the CryptoKey itself, so a warm lookup returns without a promise. */
  readonly #keys = new Map<string, CryptoKey | Promise<CryptoKey>>();
  readonly capacity: number;
  constructor(capacity = 16) {
    this.capacity = capacity;
  }

  /**
   * The key for this secret: the CryptoKey itself once imported, a promise on first use (await either).
   * Throws ConfigError synchronously on a bad secret.
   */
  get(secret: string, encoding: SecretEncoding, binding: string): CryptoKey | Promise<CryptoKey> {
    const id = `${encoding}:${secret.length}:${fingerprint(secret)}`;
    let key = this.#keys.get(id);
    if (key) {
      this.#keys.delete(id); // re-insert: Map order is our recency order
    } else {
      const pending = importHmacKey(secretBytes(secret, encoding, binding));
      pending.then(
        (imported) => this.#keys.get(id) === pending && this.#keys.set(id, imported),
        () => this.#keys.delete(id),
      );
      key = pending;
      if (this.#keys.size >= this.capacity) this.#keys.delete(this.#keys.keys().next().value as string);
    }
    this.#keys.set(id, key);
    return key;
  }
}
