/**
 * The order ledger's step of a signed call: how an order-affecting call ended, as one ledger row (core/ledger.ts),
 * handed to `record` after the answer is on its way. The venue's order id comes from the answer the signed call
 * already read; of the request's body only the order's own fields are kept, never a credential or signature.
 */
import { type Audit, type CallEnd, type LedgerKind, type LedgerRow, ledgerRow } from "../core/ledger.ts";
import type { VenueConfig } from "../core/venue-config.ts";
import { RateLimitedError, RefusedError, UpstreamError } from "./venue-errors.ts";

export interface AuditParts {
  readonly config: VenueConfig;
  readonly now: () => number;
  readonly options: { record?: (row: LedgerRow) => void; waitUntil?: (promise: Promise<unknown>) => void };
}

/** What a recorded call was: its request, as the ledger keeps it. */
export interface AuditedRequest {
  audit: Audit;
  method: string;
  path: string;
  kind: LedgerKind;
  body: string | Uint8Array | undefined;
}

function write(parts: AuditParts, request: AuditedRequest, end: CallEnd): void {
  const { record } = parts.options;
  if (!record) return;
  const { profile, account } = parts.config;
  const body = typeof request.body === "string" || request.body === undefined ? request.body : decode(request.body);
  const call = { venue: profile.name, account, method: request.method, path: request.path, kind: request.kind, body };
  record(ledgerRow(request.audit, call, end, parts.now(), crypto.randomUUID()));
}

function decode(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Records a call the venue answered. The row is made after the answer is on its way (a microtask handed to
 * `waitUntil`), with the venue's order id read from the answer the signed call already read.
 */
export function auditSent(
  parts: AuditParts,
  request: AuditedRequest,
  result: { response: Response; attempts: number; text?: string | undefined },
): void {
  const { status } = result.response;
  const orderId = parts.config.profile.orderId;
  const { text } = result;
  const later = Promise.resolve().then(() => {
    const venueOrderId = orderId && text !== undefined && status >= 200 && status < 300 ? orderId(text) : undefined;
    write(parts, request, { outcome: "sent", status, attempts: result.attempts, venueOrderId });
  });
  if (parts.options.waitUntil) parts.options.waitUntil(later);
}

/** Records a call that ended in `err`: refused by skewguard's own rules or gate, or without a usable answer. */
export function auditError(parts: AuditParts, request: AuditedRequest, err: unknown): void {
  if (err instanceof RefusedError) {
    write(parts, request, { outcome: "refused", status: err.status, refusal: `${err.rule}: ${err.message}` });
  } else if (err instanceof RateLimitedError) {
    write(parts, request, { outcome: "refused", status: 429, refusal: `rate_limit: ${err.message}` });
  } else {
    write(parts, request, { outcome: "failed", attempts: err instanceof UpstreamError ? err.attempts : undefined });
  }
}
