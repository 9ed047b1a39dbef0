/**
 * SHA-256 digests, hex, and constant-time comparison, with WebCrypto. Pure: no I/O.
 */

const encoder = new TextEncoder();

/** SHA-256 of UTF-8 text or of bytes. */
export async function sha256(data: string | Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", typeof data === "string" ? encoder.encode(data) : data));
}

/** Lower-case hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Constant-time equality of two equal-length digests: every byte is compared, whatever differs first. */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** Constant-time equality of two secrets of any length, compared as digests. */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  return digestsEqual(await sha256(given), await sha256(expected));
}
