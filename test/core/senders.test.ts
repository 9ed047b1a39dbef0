// The webhook sender table (core/senders.ts) on its own: each kind's options and defaults, and each verifier's
// answer, without a Worker around it. The HTTP side (status codes in responses, the ledger) is hooks.test.ts's.
import { describe, expect, it } from "vitest";
import { type Inbound, parseSender, SENDERS, verifySender } from "../../src/core/senders.ts";
import { signWebhook, webhookKey } from "../../src/core/standard-webhooks.ts";

const NOW = 1_800_000_000_000;
const SW_SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const PASSPHRASE = "a-long-enough-passphrase";

function parsed(raw: Record<string, unknown>) {
  const problems: string[] = [];
  return { sender: parseSender(raw, (m) => problems.push(m)), problems };
}

function inbound(headers: Record<string, string>, body: string, secret: string): Inbound {
  return {
    headers: new Headers(headers),
    body: new Uint8Array(new TextEncoder().encode(body)),
    secret,
    secretBinding: "HOOK_X",
    webhookKey: () => webhookKey(secret, "HOOK_X"),
    now: NOW,
  };
}

describe("parseSender", () => {
  it("gives each kind its own options, with their defaults", () => {
    expect(parsed({ verify: "standard-webhooks" }).sender).toEqual({
      verify: "standard-webhooks",
      toleranceSeconds: 300,
    });
    expect(parsed({ verify: "tradingview", passphrase_field: "pw" }).sender).toEqual({
      verify: "tradingview",
      passphraseField: "pw",
      sourceIps: ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"],
    });
    expect(parsed({ verify: "bearer", tolerance_seconds: 60 }).sender).toEqual({ verify: "bearer" });
  });

  it("names every kind when verify names none, and checks every kind's options on every route", () => {
    expect(parsed({ verify: "hmac" })).toEqual({
      sender: undefined,
      problems: ["verify must be standard-webhooks, tradingview or bearer"],
    });
    expect(parsed({ verify: "bearer", source_ips: "203.0.113.9", tolerance_seconds: 0 }).problems).toEqual([
      "tolerance_seconds must be a positive integer",
      'source_ips must be a list of addresses, or "any"',
    ]);
  });

  it("only a Standard Webhooks route needs its own secret and a dedupe period of twice its tolerance", () => {
    expect(Object.entries(SENDERS).map(([kind, spec]) => [kind, spec.secretPerRoute])).toEqual([
      ["standard-webhooks", true],
      ["tradingview", false],
      ["bearer", false],
    ]);
    const sw = SENDERS["standard-webhooks"];
    expect(sw.dedupeProblem({ verify: "standard-webhooks", toleranceSeconds: 300 }, 600)).toBeUndefined();
    expect(sw.dedupeProblem({ verify: "standard-webhooks", toleranceSeconds: 300 }, 599)).toContain("(600)");
  });
});

describe("verifySender", () => {
  it("standard-webhooks: a signed call gives its payload and webhook-id; a wrong one is 401, bad JSON 400", async () => {
    const sender = { verify: "standard-webhooks", toleranceSeconds: 300 } as const;
    const body = '{"signal":"kill"}';
    const headers = await signWebhook(SW_SECRET, "msg_1", NOW / 1000, body);
    const ok = await verifySender(sender, inbound({ ...headers }, body, SW_SECRET));
    expect(ok).toEqual({ ok: true, payload: { signal: "kill" }, key: "msg_1" });
    const changed = await verifySender(sender, inbound({ ...headers }, '{"signal":"go"}', SW_SECRET));
    expect(changed).toMatchObject({ ok: false, status: 401, code: "unauthenticated" });
    const notJson = await signWebhook(SW_SECRET, "msg_2", NOW / 1000, "not json");
    expect(await verifySender(sender, inbound({ ...notJson }, "not json", SW_SECRET))).toMatchObject({
      ok: false,
      status: 400,
      code: "bad_json",
    });
    const badKey = await verifySender(sender, inbound({ ...headers }, body, "whsec_"));
    expect(badKey).toEqual({
      ok: false,
      status: 503,
      code: "hook_not_configured",
      message: "the secret binding HOOK_X is not a whsec_ key",
    });
  });

  it("tradingview: the address first, then the passphrase, which leaves the payload", async () => {
    const sender = { verify: "tradingview", passphraseField: "pw", sourceIps: ["203.0.113.9"] } as const;
    const body = JSON.stringify({ pw: PASSPHRASE, side: "buy" });
    const from = (ip: string, text = body) => inbound({ "cf-connecting-ip": ip }, text, PASSPHRASE);
    expect(await verifySender(sender, from("203.0.113.10"))).toMatchObject({ ok: false, status: 403 });
    expect(await verifySender(sender, from("203.0.113.9"))).toEqual({
      ok: true,
      payload: { side: "buy" },
      key: undefined,
    });
    const wrong = from("203.0.113.9", JSON.stringify({ pw: "nope", side: "buy" }));
    expect(await verifySender(sender, wrong)).toMatchObject({ ok: false, status: 401, message: "missing or wrong pw" });
  });

  it("bearer: the token, and the idempotency-key header as the sender's key", async () => {
    const sender = { verify: "bearer" } as const;
    const call = (token: string) =>
      inbound({ authorization: `Bearer ${token}`, "idempotency-key": "k-1" }, "{}", PASSPHRASE);
    expect(await verifySender(sender, call(PASSPHRASE))).toEqual({ ok: true, payload: {}, key: "k-1" });
    expect(await verifySender(sender, call("wrong"))).toMatchObject({ ok: false, status: 401 });
  });
});
