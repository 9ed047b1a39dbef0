/**
 * Console logouts in D1 (`console_logouts`, migrations/0008). A session cookie is stateless (console/session.ts), so
 * a logout that only deleted it would leave a copy valid until it expires: the logout records the session, and a
 * recorded session is refused. Only a SHA-256 of the value is kept, never the value. Pruned with the history.
 */
import { encodeBase64 } from "../lib/index.ts";
import { errorName, log } from "./log.ts";

async function digest(value: string): Promise<string> {
  return encodeBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value))));
}

/** Records that the session `value` (valid until `expiresAt`, epoch ms) was ended by a logout. */
export async function recordLogout(db: D1Database, value: string, expiresAt: number): Promise<void> {
  await db
    .prepare("INSERT INTO console_logouts (session, expires_at) VALUES (?1, ?2) ON CONFLICT (session) DO NOTHING")
    .bind(await digest(value), expiresAt)
    .run();
}

/**
 * Whether the session `value` was ended by a logout. When D1 cannot answer, the session is taken as not logged out
 * (and that is logged): it is still signed, unexpired and for a token that exists and is allowed the console, and
 * the console's halt button must keep working while D1 is down.
 */
export async function loggedOut(db: D1Database, value: string): Promise<boolean> {
  try {
    const row = await db
      .prepare("SELECT 1 AS hit FROM console_logouts WHERE session = ?1")
      .bind(await digest(value))
      .first();
    return row !== null;
  } catch (err) {
    log("warn", { event: "console_logout_check_failed", error: errorName(err) });
    return false;
  }
}
