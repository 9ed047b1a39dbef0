// A deterministic in-memory venue for client unit tests: its own clock (skewed against a simulated local clock),
// its own HMAC (@noble/hashes, independent of src/core), and a 5 s window, like the real gateways.
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { NO_RULES } from "../../src/core/guards.ts";
import { Credentials, type VenueConfig } from "../../src/core/venue-config.ts";
import { intx } from "../../src/venues/intx.ts";

export const SECRET_B64 = "c2tld2d1YXJkLWRldi1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLXVzZSE=";

/** An INTX account the fake venue accepts: key `k`, passphrase `p`, SECRET_B64, unpaced, no rules. */
export const FAKE_INTX: VenueConfig = {
  profile: intx,
  account: "default",
  baseUrl: "https://venue.test",
  windowSeconds: 5,
  secretEncoding: "base64",
  pacing: undefined,
  credentials: new Credentials("k", SECRET_B64, "p"),
  rules: NO_RULES,
};

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** What the venue computes for a request: base64(HMAC-SHA256(base64decode(secret), ts+METHOD+path+body)). */
export function referenceSignature(secretB64: string, ts: string, method: string, path: string, body: string): string {
  const key = Uint8Array.from(atob(secretB64), (c) => c.charCodeAt(0));
  return b64(hmac(sha256, key, new TextEncoder().encode(ts + method + path + body)));
}

export interface FakeVenueOptions {
  /** Server clock minus local clock, ms. */
  skewMs: number;
  /** Round trip halves, ms (before and after the server stamps). */
  upMs?: number | (() => number);
  downMs?: number | (() => number);
  windowSeconds?: number;
  /** The answer to a timestamp outside the window; default `401 {"message":"request timestamp expired"}`. */
  timestampRefusal?: () => Response;
  /** Answer instead of the normal handling (after auth), e.g. to inject faults. */
  respond?: (request: Request, n: number) => Response | undefined;
}

/** A simulated local clock plus a fake venue that advances it by each round trip. */
export function fakeVenue(options: FakeVenueOptions) {
  let local = 1_800_000_000_000 + 123; // simulated local epoch ms
  const pick = (v: number | (() => number) | undefined) => (typeof v === "function" ? v() : (v ?? 20));
  const seen: { timestamp: string; accepted: boolean; reason?: string }[] = [];
  let requests = 0;

  async function fetch(request: Request): Promise<Response> {
    requests++;
    local += pick(options.upMs);
    const serverMs = local + options.skewMs;
    const date = new Date(Math.floor(serverMs / 1000) * 1000).toUTCString();
    const ts = request.headers.get("cb-access-timestamp") ?? "";
    const body = request.body ? await request.text() : "";
    const path = new URL(request.url).pathname;
    const expected = referenceSignature(SECRET_B64, ts, request.method, path, body);
    let response: Response;
    const window = (options.windowSeconds ?? 5) * 1000;
    if (!/^\d+$/.test(ts) || Math.abs(Number(ts) * 1000 - serverMs) > window) {
      seen.push({ timestamp: ts, accepted: false, reason: "timestamp" });
      response =
        options.timestampRefusal?.() ?? Response.json({ message: "request timestamp expired" }, { status: 401 });
    } else if (request.headers.get("cb-access-sign") !== expected) {
      seen.push({ timestamp: ts, accepted: false, reason: "signature" });
      response = Response.json({ message: "invalid signature" }, { status: 401 });
    } else {
      seen.push({ timestamp: ts, accepted: true });
      response = options.respond?.(request, requests) ?? Response.json({ ok: true, path, body });
    }
    const headers = new Headers(response.headers);
    headers.set("date", date);
    local += pick(options.downMs);
    return new Response(response.body, { status: response.status, headers });
  }

  return {
    fetch,
    now: () => local,
    advance: (ms: number) => {
      local += ms;
    },
    seen,
    get requests() {
      return requests;
    },
  };
}
