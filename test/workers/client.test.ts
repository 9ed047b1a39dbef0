// The signed client against a deterministic skewed venue: time retries, idempotent retries, no stale re-sends.
import { describe, expect, it } from "vitest";
import { retryAfterMs, SignedClient, UpstreamError } from "../../src/adapters/client.ts";
import { Keys } from "../../src/adapters/keys.ts";
import { VenueClock } from "../../src/adapters/venue-clock.ts";
import { FAKE_INTX, fakeVenue } from "../support/fake-venue.ts";

const config = FAKE_INTX;

function client(
  venue: ReturnType<typeof fakeVenue>,
  extra: Partial<ConstructorParameters<typeof SignedClient>[3]> = {},
) {
  const sleeps: number[] = [];
  const c = new SignedClient(config, new VenueClock(), new Keys(), {
    fetch: venue.fetch,
    now: venue.now,
    sleep: async (ms) => {
      sleeps.push(ms);
      venue.advance(ms);
    },
    random: () => 0.5,
    ...extra,
  });
  return { c, sleeps };
}

describe("signed client: clock", () => {
  // The first request goes out blind, stamped round(local / 1000) with local = …000.123 s: 123 ms behind local. The
  // venue stamps it after the first up delay, 5 + (7 · 48271 mod (2³¹ − 1)) mod 120 = 102 ms, so it sees the
  // timestamp skew + 225 ms off, refused beyond the 5 s window (2 attempts), accepted within it (1 attempt).
  const cases: [skewMs: number, firstAttempts: number][] = [
    [-3_600_000, 2],
    [-61_400, 2],
    [-5_500, 2], // 5 275 ms
    [-5_100, 1], // 4 875 ms
    [4_700, 1], // 4 925 ms
    [4_900, 2], // 5 125 ms
    [37_250, 2],
    [3_600_000, 2],
  ];
  for (const [skewMs, firstAttempts] of cases) {
    it(`at skew ${skewMs} ms: ${firstAttempts} attempt(s) on the first call, one after`, async () => {
      let jitter = 7;
      const next = () => {
        jitter = (jitter * 48271) % 2147483647;
        return 5 + (jitter % 120);
      };
      const venue = fakeVenue({ skewMs, upMs: next, downMs: () => next() / 3 });
      const { c } = client(venue);
      const first = await c.send({ method: "GET", path: "/api/v1/portfolios" });
      expect(first.response.status).toBe(200);
      expect(first.attempts).toBe(firstAttempts);
      for (let i = 0; i < 30; i++) {
        venue.advance(1_000 + next() * 37);
        const r = await c.send({ method: "GET", path: "/api/v1/portfolios", query: `n=${i}` });
        expect(r.response.status).toBe(200);
        expect(r.attempts).toBe(1);
      }
      expect(venue.seen.filter((s) => !s.accepted)).toHaveLength(firstAttempts - 1);
      expect(venue.seen.every((s) => /^\d{10}$/.test(s.timestamp))).toBe(true);
    });
  }

  it("re-signs the retry with a fresh timestamp, never re-sending a stale one", async () => {
    const venue = fakeVenue({ skewMs: 600_000 });
    const { c } = client(venue);
    const r = await c.send({ method: "POST", path: "/api/v1/orders", body: '{"a":1}' });
    expect(r.attempts).toBe(2);
    expect(venue.seen).toHaveLength(2);
    const [a, b] = venue.seen;
    expect(Number(b?.timestamp) - Number(a?.timestamp)).toBeGreaterThanOrEqual(599);
    expect(b?.accepted).toBe(true);
    expect(r.timestamp).toBe(Number(b?.timestamp));
  });

  it("never retries for time twice, even if the venue keeps refusing", async () => {
    // The venue's clock jumps 60 s ahead before the first attempt arrives and 60 s back before the re-signed one:
    // both are refused for their timestamp, and each refusal's Date says so.
    let arrivals = 0;
    const options = { skewMs: 0, upMs: () => 20 };
    options.upMs = () => {
      options.skewMs = ++arrivals === 1 ? 60_000 : -60_000;
      return 20;
    };
    const venue = fakeVenue(options);
    const { c } = client(venue);
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(r.attempts).toBe(2);
    expect(venue.requests).toBe(2);
    expect(r.response.status).toBe(401);
    expect(await r.response.json()).toEqual({ message: "request timestamp expired" });
  });

  it("reports the offset and uncertainty it signed with", async () => {
    const venue = fakeVenue({ skewMs: 37_250, upMs: 10, downMs: 10 });
    const { c } = client(venue);
    await c.send({ method: "GET", path: "/api/v1/portfolios" });
    venue.advance(400);
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(r.uncertaintyMs).not.toBeNull();
    expect(Math.abs(r.offsetMs - 37_250)).toBeLessThanOrEqual(r.uncertaintyMs as number);
    expect(r.uncertaintyMs).toBeLessThanOrEqual(520);
  });
});

// INTX most likely refuses a stale timestamp with the generic body it gives a bad signature, and in plain text unless
// asked for JSON (issue 23, items 2 and 3): the refusal's Date decides, and a plain-text answer teaches the clock.
describe("signed client: the venue's real refusals", () => {
  const GENERIC = { title: "io.javalin.http.UnauthorizedResponse: Unauthorized", status: 401 };
  for (const [shape, refusal] of [
    ["a generic JSON 401", () => Response.json(GENERIC, { status: 401 })],
    [
      "a plain-text 401",
      () => new Response("Unauthorized", { status: 401, headers: { "content-type": "text/plain" } }),
    ],
    ["a generic CDE 400", () => Response.json({ message: "Unauthorized" }, { status: 400 })],
  ] as const) {
    it(`${shape} whose Date shows a stale timestamp is re-signed once and lands`, async () => {
      const venue = fakeVenue({ skewMs: 37_250, timestampRefusal: refusal });
      const { c } = client(venue);
      const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
      expect(r.response.status).toBe(200);
      expect(r.attempts).toBe(2);
      expect(venue.seen.map((s) => s.accepted)).toEqual([false, true]);
    });
  }

  it("a generic 401 whose Date shows the timestamp inside the window is a key refusal: not re-sent, alerted", async () => {
    const venue = fakeVenue({ skewMs: 0, respond: () => Response.json(GENERIC, { status: 401 }) });
    const alerts: string[] = [];
    const { c } = client(venue, { alert: (event) => alerts.push(event.type) });
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(r.response.status).toBe(401);
    expect(r.attempts).toBe(1);
    expect(venue.requests).toBe(1);
    expect(alerts).toEqual(["venue.auth_failed"]);
  });

  it("asks for JSON on every request that names no Accept, and keeps a caller's own", async () => {
    const accepts: (string | null)[] = [];
    const venue = fakeVenue({
      skewMs: 0,
      respond: (request) => {
        accepts.push(request.headers.get("accept"));
        return undefined;
      },
    });
    const { c } = client(venue);
    await c.send({ method: "GET", path: "/api/v1/portfolios" });
    await c.send({ method: "GET", path: "/api/v1/portfolios", headers: { accept: "text/csv" } });
    expect(accepts).toEqual(["application/json", "text/csv"]);
  });
});

describe("signed client: retry policy", () => {
  it("a venue 429 without Retry-After waits until the venue's next second before the retry", async () => {
    // INTX's 429 carries no Retry-After (issue 23, item 4). The venue's clock is the local one here (skew 0), so the
    // second each attempt arrives in is read straight from the simulated clock.
    const arrivedIn: number[] = [];
    const venue = fakeVenue({
      skewMs: 0,
      respond: (_r, n) => {
        arrivedIn.push(Math.floor(venue.now() / 1000));
        return n === 1 ? Response.json({ message: "Rate limit exceeded" }, { status: 429 }) : undefined;
      },
    });
    const { c, sleeps } = client(venue);
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(r.response.status).toBe(200);
    expect(r.attempts).toBe(2);
    expect(arrivedIn).toHaveLength(2);
    expect(arrivedIn[1]).toBe((arrivedIn[0] as number) + 1);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeLessThanOrEqual(1_000);
  });

  it("retries an idempotent GET on 503, honouring Retry-After", async () => {
    const venue = fakeVenue({
      skewMs: 0,
      respond: (_r, n) =>
        n === 1 ? new Response("busy", { status: 503, headers: { "retry-after": "1" } }) : undefined,
    });
    const { c, sleeps } = client(venue);
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(r.response.status).toBe(200);
    expect(r.attempts).toBe(2);
    expect(sleeps).toEqual([1_000]);
  });

  it("does not wait past the retry budget: a long Retry-After returns the 429", async () => {
    const venue = fakeVenue({
      skewMs: 0,
      respond: () => new Response("slow down", { status: 429, headers: { "retry-after": "30" } }),
    });
    const { c, sleeps } = client(venue);
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(r.response.status).toBe(429);
    expect(r.attempts).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it("never retries a POST on 5xx", async () => {
    const venue = fakeVenue({ skewMs: 0, respond: () => new Response("oops", { status: 502 }) });
    const { c } = client(venue);
    const r = await c.send({ method: "POST", path: "/api/v1/orders", body: "{}" });
    expect(r.response.status).toBe(502);
    expect(venue.requests).toBe(1);
  });

  it("maps a network failure to UpstreamError(unreachable) after idempotent retries", async () => {
    let calls = 0;
    const venue = fakeVenue({ skewMs: 0 });
    const { c } = client(venue, {
      fetch: async () => {
        calls++;
        throw new TypeError("connection refused");
      },
    });
    const err = await c.send({ method: "GET", path: "/api/v1/portfolios" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).kind).toBe("unreachable");
    expect(calls).toBe(3);
  });

  it("maps a timeout to UpstreamError(timeout) and does not retry a POST", async () => {
    let calls = 0;
    const venue = fakeVenue({ skewMs: 0 });
    const { c } = client(venue, {
      fetch: async () => {
        calls++;
        throw new DOMException("timed out", "TimeoutError");
      },
    });
    const err = await c.send({ method: "POST", path: "/api/v1/orders", body: "{}" }).catch((e: unknown) => e);
    expect((err as UpstreamError).kind).toBe("timeout");
    expect(calls).toBe(1);
  });
});

describe("Retry-After (RFC 9110: delay-seconds or an HTTP date)", () => {
  it("seconds, a date ahead (its distance), a date past (now), or nothing usable", () => {
    const now = Date.UTC(2026, 9, 21, 7, 28, 0);
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs(" 3 ", now)).toBe(3_000);
    expect(retryAfterMs("Wed, 21 Oct 2026 07:28:10 GMT", now)).toBe(10_000);
    expect(retryAfterMs("Wed, 21 Oct 2026 07:27:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
