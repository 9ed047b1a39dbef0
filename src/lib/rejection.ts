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
    const { message, title, errors }: Record<string, unknown> = { ...body };
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
    const { message }: Record<string, unknown> = { ...error };
    if (typeof message === "string") messages.push(message);
  }
  return messages.length > 0 ? messages.join("; ") : undefined;
}

/**
 * The venue's own words for a refused timestamp, matched against its error message as a whole (after a Javalin
 * exception-class prefix such as `io.javalin.http.UnauthorizedResponse: `), never against text anywhere in the body:
 * a caller's `client_order_id` or instrument quoted inside a refusal ("Order rejected (DUPLICATE_CLIENT_ORDER_ID
 * timestamp-1)") must not read as a clock problem. Legacy Coinbase said "request timestamp expired" (also "Request
 * timestamp is expired"); others say "invalid timestamp", "CB-ACCESS-TIMESTAMP outside of window", "request expired".
 */
const TIMESTAMP_PHRASE =
  /^(?:(?:(?:request|cb-access)[ -]?)?time ?stamp (?:is )?(?:expired|too old|invalid|outside (?:of )?(?:the )?window|out of (?:range|window))|invalid (?:request )?time ?stamp|request (?:has |is )?expired|clock skew(?: too large)?)\.?$/i;

/** Whether a venue error message is one of the known phrases for a refused timestamp (a hint, see below). */
export function isTimestampPhrase(message: string | undefined): boolean {
  if (message === undefined) return false;
  const bare = message.replace(/^(?:[\w.$]+\.)?\w+(?:Response|Exception): /, "").trim();
  return TIMESTAMP_PHRASE.test(bare);
}

/**
 * What a refusal's own `Date` says of the timestamp that was signed, against the venue's window. The venue's clock
 * read somewhere in [date, date + 1) s when it answered, and it compared `timestamp` with that reading:
 * - `outside`: for every such reading the timestamp is further than the window: a timestamp refusal, whatever the
 *   body says (INTX's generic 401 is the same for a bad signature and a stale timestamp);
 * - `inside`: for every such reading it is within the window: the timestamp was not the reason;
 * - `edge`: it depends on where in that second the venue read its clock.
 */
export type WindowVerdict = "outside" | "inside" | "edge";

export function windowVerdict(timestamp: number, windowSeconds: number, date: number): WindowVerdict {
  if (timestamp + windowSeconds < date || timestamp - windowSeconds >= date + 1) return "outside";
  if (timestamp - windowSeconds <= date && timestamp + windowSeconds >= date + 1) return "inside";
  return "edge";
}

/** What skewguard knows of the request a refusal answered. */
export interface RefusalEvidence {
  /** The `CB-ACCESS-TIMESTAMP` that was sent, seconds. */
  timestamp: number;
  /** The venue's timestamp window, seconds (docs/protocol.md, "Timestamp windows"). */
  windowSeconds: number;
  /**
   * The refusal's `Date`, seconds, when the answer came from the venue's API (`venueSample`): a gateway's page is
   * stamped by another machine's clock. Undefined when there is none.
   */
  date: number | undefined;
}

/**
 * True when the venue refused the request for its `CB-ACCESS-TIMESTAMP` (so it did not process it). Decided first
 * from what cannot lie, the refusal's own `Date` against the signed timestamp (`windowVerdict`); the venue's words
 * are read only when there is no usable `Date`. At the edge second it counts as one whatever its words: the venue
 * refused the request, so re-signing it once, with what this refusal taught, costs a round trip and nothing else.
 * Only 400 and 401 can be one. docs/protocol.md, "Error shapes".
 */
export function isTimestampRejection(status: number, bodyText: string, evidence?: RefusalEvidence): boolean {
  if (status !== 400 && status !== 401) return false;
  const verdict =
    evidence?.date === undefined ? undefined : windowVerdict(evidence.timestamp, evidence.windowSeconds, evidence.date);
  if (verdict === "outside") return true;
  if (verdict === "inside") return false;
  return verdict === "edge" || isTimestampPhrase(venueMessage(bodyText));
}

/**
 * True for a 401 that is not a timestamp rejection: the venue refused the credentials themselves (a revoked or
 * unknown key, a wrong passphrase, a bad signature), which re-signing will not cure. The `venue.auth_failed` alert
 * is raised on it.
 */
export function isAuthRefusal(status: number, bodyText: string, evidence?: RefusalEvidence): boolean {
  return status === 401 && !isTimestampRejection(status, bodyText, evidence);
}

/**
 * Whether the venue refused an order because its `client_order_id` was already used: proof that an earlier
 * attempt of the same logical order reached it, so a durable delivery can stop retrying and count it delivered.
 */
export function isDuplicateOrder(status: number, bodyText: string): boolean {
  return status >= 400 && status < 500 && /DUPLICATE_CLIENT_ORDER_ID|duplicate client[ _]order[ _]id/i.test(bodyText);
}
