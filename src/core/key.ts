/**
 * HMAC key import, with a small cache so the hot path never calls `importKey` twice for one secret.
 * The cache is keyed by a fingerprint, never by the secret itself, and holds at most `capacity` keys.
 */
import { decodeBase64 } from "./base64.ts";
import { ConfigError } from "./errors.ts";

/** How a venue's secret turns into HMAC key bytes (PROTOCOL.md: base64 by default; raw for some samples). */
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

/** 64-bit FNV-1a over UTF-16 code units: a cheap, synchronous fingerprint, so lookups cost no crypto call. */
function fingerprint(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(36);
}

/** A bounded LRU of imported keys. Entries are keyed by (encoding, length, fingerprint of the secret). */
export class KeyCache {
  readonly #keys = new Map<string, Promise<CryptoKey>>();
  readonly capacity: number;
  constructor(capacity = 16) {
    this.capacity = capacity;
  }

  /** The cached key for this secret, importing it on first use. Throws ConfigError synchronously on a bad secret. */
  get(secret: string, encoding: SecretEncoding, binding: string): Promise<CryptoKey> {
    const id = `${encoding}:${secret.length}:${fingerprint(secret)}`;
    let key = this.#keys.get(id);
    if (key) {
      this.#keys.delete(id); // re-insert: Map order is our recency order
    } else {
      key = importHmacKey(secretBytes(secret, encoding, binding));
      key.catch(() => this.#keys.delete(id));
      if (this.#keys.size >= this.capacity) this.#keys.delete(this.#keys.keys().next().value as string);
    }
    this.#keys.set(id, key);
    return key;
  }

  get size(): number {
    return this.#keys.size;
  }
}
