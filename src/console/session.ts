/**
 * The console's login. A browser cannot send a bearer header on navigation, so a relay token is exchanged once, in a
 * form, for a session cookie: `__Host-` (Secure, Path=/, no Domain), HttpOnly, SameSite=Strict, 30 minutes. It carries
 * the token's name, expiry and a random session id, signed with HMAC-SHA-256 under a key derived from the
 * `CONSOLE_SESSION_SECRET` and every relay token: changing the tokens ends every session, and since the secret never
 * leaves the Worker, a session or CSRF value cannot be used to test guesses of a token offline. Every state change also
 * carries a CSRF token: an HMAC of the session under the same key.
 */
import type { TokenTable } from "../core/tokens.ts";
import { encodeBase64 } from "../lib/base64.ts";

export const SESSION_COOKIE = "__Host-skewguard-console";
export const SESSION_SECONDS = 30 * 60;

const encoder = new TextEncoder();

/**
 * The session key: HMAC-SHA-256 under `secret` over a label and every token, itself an HMAC key. Derived once per
 * isolate (the runtime keeps it: routes/console.ts).
 */
export async function sessionKey(tokens: TokenTable, secret: string): Promise<CryptoKey> {
  const material = ["skewguard console session v1", ...tokens.entries.map((entry) => entry.token)].join("\n");
  const hmac = { name: "HMAC", hash: "SHA-256" } as const;
  const outer = await crypto.subtle.importKey("raw", encoder.encode(secret), hmac, false, ["sign"]);
  const derived = await crypto.subtle.sign("HMAC", outer, encoder.encode(material));
  return crypto.subtle.importKey("raw", derived, hmac, false, ["sign", "verify"]);
}

/** HMAC-SHA-256 of `text`, base64url without padding (43 characters). */
async function mac(key: CryptoKey, text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
  return encodeBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

async function macMatches(key: CryptoKey, text: string, given: string): Promise<boolean> {
  // Compared as MACs of the two strings, so the comparison's timing says nothing about the expected value.
  const [a, b] = await Promise.all([mac(key, `cmp\n${await mac(key, text)}`), mac(key, `cmp\n${given}`)]);
  return a === b;
}

/** A new session value for token `name`, valid for SESSION_SECONDS from `now`. A random id (128 bits) makes each
 * session its own, so that a logout ends this one only, even for the same token in the same second. */
export async function issueSession(key: CryptoKey, name: string, now: number): Promise<string> {
  const id = encodeBase64(crypto.getRandomValues(new Uint8Array(16)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
  const payload = `v2.${name}.${Math.floor(now / 1000) + SESSION_SECONDS}.${id}`;
  return `${payload}.${await mac(key, payload)}`;
}

/** The token name a session value was issued for and its expiry (epoch ms), if its signature holds and it has not
 * expired. */
export async function readSession(
  key: CryptoKey,
  value: string,
  now: number,
): Promise<{ name: string; expiresAt: number } | undefined> {
  const m =
    /^v2\.(?<name>[A-Za-z0-9_.-]{1,64})\.(?<expiry>\d{1,12})\.(?<id>[A-Za-z0-9_-]{22})\.(?<signature>[A-Za-z0-9_-]{43})$/.exec(
      value,
    );
  const { name, expiry, id, signature } = m?.groups ?? {};
  if (name === undefined || expiry === undefined || id === undefined || signature === undefined) return undefined;
  if (!(await macMatches(key, `v2.${name}.${expiry}.${id}`, signature))) return undefined;
  const expiresAt = Number(expiry) * 1000;
  return expiresAt > now ? { name, expiresAt } : undefined;
}

/** The CSRF token that every form of this session carries. */
export function csrfToken(key: CryptoKey, session: string): Promise<string> {
  return mac(key, `csrf\n${session}`);
}

export function csrfMatches(key: CryptoKey, session: string, given: string): Promise<boolean> {
  return macMatches(key, `csrf\n${session}`, given);
}

/** The Set-Cookie value for `session`, or one that deletes the cookie. */
export function sessionCookie(session: string | null): string {
  const value = session ?? "";
  const age = session === null ? 0 : SESSION_SECONDS;
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${age}; HttpOnly; Secure; SameSite=Strict`;
}

/** The session cookie's value in `request`, if any. */
export function sessionFrom(request: Request): string | undefined {
  const header = request.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === SESSION_COOKIE) return rest.join("=");
  }
  return undefined;
}
