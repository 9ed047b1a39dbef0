// The signed client against a deterministic skewed venue: time retries, idempotent retries, no stale re-sends.
import { describe, expect, it } from "vitest";
import { SignedClient, UpstreamError } from "../../src/adapters/client.ts";
import { VenueClock } from "../../src/adapters/venue-clock.ts";
import { NO_RULES } from "../../src/core/guards.ts";
import { Credentials, PROFILES, type VenueConfig } from "../../src/core/venue.ts";
import { KeyCache } from "../../src/lib/key.ts";
import { fakeVenue, SECRET_B64 } from "../support/fake-venue.ts";

const config: VenueConfig = {
  profile: PROFILES.intx,
  account: "default",
  baseUrl: "https://venue.test",
  windowSeconds: 5,
  secretEncoding: "base64",
  pacing: undefined,
  credentials: new Credentials("k", SECRET_B64, "p"),
  rules: NO_RULES,
};

function client(
  venue: ReturnType<typeof fakeVenue>,
  extra: Partial<ConstructorParameters<typeof SignedClient>[3]> = {},
) {
  const sleeps: number[] = [];
  const c = new SignedClient(config, new VenueClock(), new KeyCache(), {
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
  for (const skewMs of [-3_600_000, -61_400, -5_500, 4_900, 37_250, 3_600_000]) {
    it(`at skew ${skewMs} ms: one time-retry at most on the first call, none after`, async () => {
      let jitter = 7;
      const next = () => {
        jitter = (jitter * 48271) % 2147483647;
        return 5 + (jitter % 120);
      };
      const venue = fakeVenue({ skewMs, upMs: next, downMs: () => next() / 3 });
      const { c } = client(venue);
      const first = await c.send({ method: "GET", path: "/api/v1/portfolios" });
      expect(first.response.status).toBe(200);
      expect(first.attempts).toBe(Math.abs(skewMs) > 5_000 ? 2 : first.attempts);
      for (let i = 0; i < 30; i++) {
        venue.advance(1_000 + next() * 37);
        const r = await c.send({ method: "GET", path: "/api/v1/portfolios", query: `n=${i}` });
        expect(r.response.status).toBe(200);
        expect(r.attempts).toBe(1);
      }
      expect(venue.seen.filter((s) => !s.accepted).length).toBeLessThanOrEqual(1);
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

describe("signed client: retry policy", () => {
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
