/**
 * Console logouts in D1 (`console_logouts`, migrations/0008). A session cookie is stateless (console/session.ts), so
 * a logout that only deleted it would leave a copy valid until it expires: the logout records the session, and a
 * recorded session is refused. Only a SHA-256 of the value is kept, never the value. Pruned with the history.
 */
import { encodeBase64 } from "../lib/base64.ts";
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

/** How long a logout check may wait on D1 before `ifUnknown` answers. */
export const LOGOUT_CHECK_MS = 1_000;

/**
 * Whether the session `value` was ended by a logout. When D1 does not answer (an error, or nothing within
 * LOGOUT_CHECK_MS), `ifUnknown` is the answer, and that is logged: the console's callers take a session as not logged
 * out only where refusing it would lock an operator out in an incident (the page and its halt button).
 */
export async function loggedOut(db: D1Database, value: string, ifUnknown: boolean): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const check = digest(value).then((session) =>
      db.prepare("SELECT 1 AS hit FROM console_logouts WHERE session = ?1").bind(session).first(),
    );
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), LOGOUT_CHECK_MS);
    });
    const row = await Promise.race([check, late]);
    if (row === "late") throw new Error(`no answer from D1 in ${LOGOUT_CHECK_MS} ms`);
    return row !== null;
  } catch (err) {
    log("warn", { event: "console_logout_check_failed", taken_as_logged_out: ifUnknown, error: errorName(err) });
    return ifUnknown;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
