/**
 * Reading the venues' error bodies, and the one rule for "this was a timestamp rejection".
 * docs/protocol.md, "Error shapes": the exact status and text are undocumented for INTX and CDE; legacy Coinbase
 * answered 401 {"message":"request timestamp expired"}, a related derivatives API answers 400. Keep the rule here.
 */

/** The human message of a venue error body: `{"message": …}` or `{"title": …, "status": …}`, else undefined. */
export function venueMessage(bodyText: string): string | undefined {
  try {
    const body: unknown = JSON.parse(bodyText);
    if (typeof body !== "object" || body === null) return undefined;
    const { message, title } = body as Record<string, unknown>;
    if (typeof message === "string") return message;
    if (typeof title === "string") return title;
  } catch {
    // Not JSON: some gateways answer plain text.
    return bodyText.length > 0 && bodyText.length <= 500 ? bodyText : undefined;
  }
  return undefined;
}

/**
 * Narrow on purpose: a false positive re-sends a request, so words like "expired" alone (an order's expiry
 * time, say) must not match. Legacy Coinbase: "request timestamp expired"; others say "invalid timestamp".
 */
const TIMESTAMP_WORDS = /time ?stamp|request (has )?expired|clock skew/i;

/** True when the venue refused the request for its `CB-ACCESS-TIMESTAMP` (so it did not process it). */
export function isTimestampRejection(status: number, bodyText: string): boolean {
  if (status !== 400 && status !== 401) return false;
  const message = venueMessage(bodyText);
  return message !== undefined && TIMESTAMP_WORDS.test(message);
}

/**
 * Whether the venue refused an order because its `client_order_id` was already used: proof that an earlier
 * attempt of the same logical order reached it, so a durable delivery can stop retrying and count it delivered.
 */
export function isDuplicateOrder(status: number, bodyText: string): boolean {
  return status >= 400 && status < 500 && /DUPLICATE_CLIENT_ORDER_ID|duplicate client[ _]order[ _]id/i.test(bodyText);
}
