/**
 * What every route shares about HTTP: the one JSON error shape, `{"error": {"code", "message"}}`, the router's
 * `catch`, and bounded body reading. Only deliberate `HttpError`s reach the client; anything else is a generic 500,
 * its detail in the log.
 */

import { errorName, log } from "../adapters/log.ts";
import { readAtMost } from "../adapters/stream.ts";
import { RateLimitedError, RefusedError, type UpstreamFailure } from "../adapters/venue-errors.ts";

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
  if (err instanceof RefusedError) {
    const retry = err.retryAfterSeconds === undefined ? undefined : { "retry-after": String(err.retryAfterSeconds) };
    return errorResponse(err.status, err.code, err.message, retry);
  }
  if (err instanceof RateLimitedError) {
    return errorResponse(429, "rate_limited", err.message, { "retry-after": String(err.retryAfterSeconds) });
  }
  log("error", { event: "unhandled", error: errorName(err) });
  return errorResponse(500, "internal", "internal error; see the Worker's logs");
}

/** Reads at most `limit` bytes of the body, or throws 413. An empty body is undefined. */
export async function readBody(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const declared = request.headers.get("content-length");
  const body = declared !== null && Number(declared) > limit ? null : await readAtMost(request.body, limit);
  if (!body) throw new HttpError(413, "body_too_large", `request body over ${limit} bytes`);
  return body.byteLength === 0 ? undefined : body;
}

const FAILURES: Record<UpstreamFailure, { status: number; code: string; message: string }> = {
  unreachable: { status: 502, code: "venue_unreachable", message: "could not be reached" },
  timeout: { status: 504, code: "venue_timeout", message: "did not answer in time; it may have processed the request" },
  redirect: {
    status: 502,
    code: "venue_redirect",
    message: "answered with a redirect; skewguard never follows one with a signed request",
  },
  broken: {
    status: 502,
    code: "venue_response_broken",
    message: "answered, but the answer broke off; it may have processed the request",
  },
  withheld: {
    status: 502,
    code: "venue_response_withheld",
    message: "answered with a body that echoed the request's credentials, so it is not passed on",
  },
  undecodable: {
    status: 502,
    code: "venue_response_undecodable",
    message: "answered in an encoding skewguard cannot decode, so it could not be checked and is not passed on",
  },
  too_large: { status: 502, code: "venue_response_too_large", message: "answered with a body too large to relay" },
};

/** The HTTP error for a venue that gave no usable answer; `detail` is the redirect's host or the status withheld. */
export function venueFailure(venue: string, kind: UpstreamFailure, detail?: string): HttpError {
  const { status, code, message } = FAILURES[kind];
  return new HttpError(status, code, `${venue} ${message}${detail ? ` (${detail})` : ""}`);
}
