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

/** Standard padded base64 of raw bytes. */
export function encodeBase64(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (let i = 0; i < view.length; i++) binary += String.fromCharCode(view[i] as number);
  return btoa(binary);
}
