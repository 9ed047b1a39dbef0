// Our WebCrypto Standard Webhooks signer and verifier against the reference `standardwebhooks` package,
// in both directions, plus each way a delivery is refused.
import * as fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook } from "../../src/core/standard-webhooks.ts";

const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const NOW = 1_800_000_000_000;

describe("standard webhooks", () => {
  it("what we sign, the reference package verifies; what it signs, we verify", async () => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/), fc.string({ maxLength: 200 }), async (id, body) => {
        const ts = Math.floor(NOW / 1000);
        const ours = await signWebhook(SECRET, id, ts, body);
        expect(ours["webhook-signature"]).toBe(new Webhook(SECRET).sign(id, new Date(ts * 1000), body));
        const theirs = new Headers({ ...ours, "webhook-signature": new Webhook(SECRET).sign(id, new Date(NOW), body) });
        expect(await verifyWebhook(SECRET, theirs, body, { now: NOW })).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it("refuses a changed body, id or timestamp, a wrong key, a bad version, and a stale or future timestamp", async () => {
    const ts = Math.floor(NOW / 1000);
    const good = await signWebhook(SECRET, "msg_1", ts, '{"a":1}');
    const verify = (headers: Record<string, string>, body = '{"a":1}', now = NOW) =>
      verifyWebhook(SECRET, new Headers(headers), body, { now, toleranceSeconds: 300 });
    expect(await verify(good)).toBe(true);
    expect(await verify(good, '{"a":2}')).toBe(false);
    expect(await verify({ ...good, "webhook-id": "msg_2" })).toBe(false);
    expect(await verify({ ...good, "webhook-timestamp": String(ts + 1) })).toBe(false);
    const other = await signWebhook(`whsec_${btoa("another key, another signature!!")}`, "msg_1", ts, '{"a":1}');
    expect(await verify(other)).toBe(false);
    expect(await verify({ ...good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,") })).toBe(false);
    expect(await verify(good, '{"a":1}', NOW + 301_000)).toBe(false);
    expect(await verify(good, '{"a":1}', NOW - 301_000)).toBe(false);
    expect(await verify(good, '{"a":1}', NOW + 299_000)).toBe(true);
    expect(await verify({ ...good, "webhook-signature": `v1,bm9wZQ== ${good["webhook-signature"]}` })).toBe(true);
    expect(await verify({ "webhook-id": "msg_1", "webhook-timestamp": String(ts) })).toBe(false);
  });
});
