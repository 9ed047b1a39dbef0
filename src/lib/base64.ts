/**
 * Strict, canonical base64 (RFC 4648 §4, padded). Python's `b64decode` drops stray characters; a secret
 * that only "mostly" decodes would sign with the wrong key and fail as a mysterious 401, so we refuse it.
 */

const CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes canonical padded base64, or returns `null` for anything else (including non-zero pad bits). */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (!CANONICAL.test(text)) return null;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  // Reject non-zero trailing bits ("QR==" decodes like "QQ=="): only one spelling of a key is accepted.
  return encodeBase64(bytes) === text ? bytes : null;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard padded base64 of raw bytes. Pure JS: for a 32-byte MAC it beats a `btoa` call into the runtime. */
export function encodeBase64(bytes: ArrayBuffer | Uint8Array): string {
  const v = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  let i = 0;
  for (; i + 2 < v.length; i += 3) {
    const n = ((v[i] as number) << 16) | ((v[i + 1] as number) << 8) | (v[i + 2] as number);
    out +=
      ALPHABET.charAt(n >>> 18) +
      ALPHABET.charAt((n >>> 12) & 63) +
      ALPHABET.charAt((n >>> 6) & 63) +
      ALPHABET.charAt(n & 63);
  }
  if (i < v.length) {
    const n = ((v[i] as number) << 16) | (i + 1 < v.length ? (v[i + 1] as number) << 8 : 0);
    out += ALPHABET.charAt(n >>> 18) + ALPHABET.charAt((n >>> 12) & 63);
    out += i + 1 < v.length ? `${ALPHABET.charAt((n >>> 6) & 63)}=` : "==";
  }
  return out;
}
