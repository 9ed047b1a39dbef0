/**
 * The one JSON error shape, `{"error": {"code", "message"}}`, and the router's `catch`.
 * Only deliberate `HttpError`s reach the client; anything else is a generic 500, its detail in the log.
 */
import { RateLimitedError } from "../adapters/client.ts";
import { log } from "../adapters/log.ts";

export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string> | undefined;
  /** Safe, structured detail for the client (e.g. which payload fields were wrong). */
  readonly details: unknown;
  constructor(status: number, code: string, message: string, headers?: Record<string, string>, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.details = details;
  }
}

/** A JSON error response. `message` must be safe to show: it names inputs, never secret values. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
  details?: unknown,
): Response {
  const error = details === undefined ? { code, message } : { code, message, details };
  return Response.json({ error }, { status, headers });
}

/** The router's `catch`: a deliberate error keeps its status; anything else becomes an opaque 500. */
export function toErrorResponse(err: unknown): Response {
  if (err instanceof HttpError) return errorResponse(err.status, err.code, err.message, err.headers, err.details);
  if (err instanceof RateLimitedError) {
    return errorResponse(429, "rate_limited", err.message, { "retry-after": String(err.retryAfterSeconds) });
  }
  log("error", { event: "unhandled", error: err instanceof Error ? err.name : typeof err });
  return errorResponse(500, "internal", "internal error; see the Worker's logs");
}
