/**
 * Reading the venues' error bodies, and the one rule for "this was a timestamp rejection".
 * docs/protocol.md, "Error shapes": the exact status and text are undocumented for INTX and CDE; legacy Coinbase
 * answered 401 {"message":"request timestamp expired"}, a related derivatives API answers 400, and Coinbase's v2 API
 * answers 401 {"errors":[{"id":"authentication_error","message":"request timestamp expired"}]}. Keep the rule here.
 */

/**
 * The human message of a venue error body, read from the first of these that holds one:
 * - `{"message": …}` (INTX, CDE, Coinbase Exchange);
 * - `{"title": …, "status": …}` (INTX's Javalin exception body);
 * - `{"errors": [{"id": …, "message": …}, …]}` (Coinbase's v2 shape): the string `message` of every element,
 *   in order, joined with "; " (a v2 `validation_error` may list several); elements without one are skipped.
 * A body that is not JSON is its own message when it is short (some gateways answer plain text); anything else
 * is undefined. Never throws.
 */
export function venueMessage(bodyText: string): string | undefined {
  try {
    const body: unknown = JSON.parse(bodyText);
    if (typeof body !== "object" || body === null) return undefined;
    const { message, title, errors } = body as Record<string, unknown>;
    if (typeof message === "string") return message;
    if (typeof title === "string") return title;
    if (Array.isArray(errors)) return errorsMessage(errors);
  } catch {
    // Not JSON: some gateways answer plain text.
    return bodyText.length > 0 && bodyText.length <= 500 ? bodyText : undefined;
  }
  return undefined;
}

/** The v2 `errors[]` messages joined with "; ", or undefined when no element has a string `message`. */
function errorsMessage(errors: readonly unknown[]): string | undefined {
  const messages: string[] = [];
  for (const error of errors) {
    if (typeof error !== "object" || error === null) continue;
    const { message } = error as Record<string, unknown>;
    if (typeof message === "string") messages.push(message);
  }
  return messages.length > 0 ? messages.join("; ") : undefined;
}

/**
 * Narrow on purpose: a false positive re-sends a request, so words like "expired" alone (an order's expiry
 * time, say) must not match. Legacy Coinbase: "request timestamp expired" (also seen as "Request timestamp is
 * expired"); others say "invalid timestamp". `time ?stamp` matches both "timestamp" and "time stamp".
 */
const TIMESTAMP_WORDS = /time ?stamp|request (has )?expired|clock skew/i;

/** True when the venue refused the request for its `CB-ACCESS-TIMESTAMP` (so it did not process it). */
export function isTimestampRejection(status: number, bodyText: string): boolean {
  if (status !== 400 && status !== 401) return false;
  const message = venueMessage(bodyText);
  return message !== undefined && TIMESTAMP_WORDS.test(message);
}

/**
 * True for a 401 that is not a timestamp rejection: the venue refused the credentials themselves (a revoked or
 * unknown key, a wrong passphrase, a bad signature), which re-signing will not cure. The `venue.auth_failed` alert
 * is raised on it.
 */
export function isAuthRefusal(status: number, bodyText: string): boolean {
  return status === 401 && !isTimestampRejection(status, bodyText);
}

/**
 * Whether the venue refused an order because its `client_order_id` was already used: proof that an earlier
 * attempt of the same logical order reached it, so a durable delivery can stop retrying and count it delivered.
 */
export function isDuplicateOrder(status: number, bodyText: string): boolean {
  return status >= 400 && status < 500 && /DUPLICATE_CLIENT_ORDER_ID|duplicate client[ _]order[ _]id/i.test(bodyText);
}
