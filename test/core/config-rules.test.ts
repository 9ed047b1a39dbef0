// Configuration and payload rules read directly (the Worker tests reach them only through config()): RELAY_TOKENS,
// ALERTS sinks, whsec_ keys, uuid fields, and the venue's duplicate-order refusal.
import { describe, expect, it } from "vitest";
import { parseAccounts } from "../../src/core/accounts.ts";
import { alertBody, parseAlerts } from "../../src/core/alerts.ts";
import { checkField } from "../../src/core/hooks.ts";
import { webhookKey } from "../../src/core/standard-webhooks.ts";
import { parseTokens } from "../../src/core/tokens.ts";
import { parseVenue } from "../../src/core/venue-config.ts";
import { isDuplicateOrder } from "../../src/lib/rejection.ts";
import { DEFAULT_VENUES } from "../../src/venues/index.ts";
import { intx as INTX } from "../../src/venues/intx.ts";

const TOKEN = "a-token-of-twenty-chars";

describe("RELAY_TOKENS", () => {
  it("a valid entry parses; unset, a non-object entry or a non-string allow rule is refused by name", () => {
    expect(
      parseTokens(JSON.stringify([{ name: "bot", token: TOKEN, allow: ["GET /intx/*"] }])).map((t) => t.name),
    ).toEqual(["bot"]);
    expect(() => parseTokens(undefined)).toThrow("RELAY_TOKENS: is not set");
    expect(() => parseTokens("  ")).toThrow("RELAY_TOKENS: is not set");
    expect(() => parseTokens(JSON.stringify([null]))).toThrow("RELAY_TOKENS: entry 0 is not an object");
    expect(() => parseTokens(JSON.stringify(["bot"]))).toThrow("RELAY_TOKENS: entry 0 is not an object");
    expect(() => parseTokens(JSON.stringify([{ name: "bot", token: TOKEN, allow: [7] }]))).toThrow(
      'RELAY_TOKENS: entry 0 (bot): "allow" must be a non-empty array',
    );
  });
});

describe("ALERTS sinks", () => {
  const sink = (extra: Record<string, unknown>) =>
    parseAlerts(JSON.stringify([{ name: "s", url: "https://hooks.example/x", format: "slack", ...extra }]));
  it('events ["*"] and a listed event type are accepted; an unknown one is a problem', () => {
    expect(sink({ events: ["*"] }).problems).toEqual([]);
    expect(sink({ events: ["*"] }).items[0]?.events).toBeUndefined();
    expect(sink({ events: ["account.halted"] }).problems).toEqual([]);
    expect(sink({ events: ["account.nope"] }).problems).toHaveLength(1);
  });
  it("min_severity must be info, warning or critical", () => {
    expect(sink({ min_severity: "critical" }).items[0]?.minSeverity).toBe("critical");
    expect(sink({ min_severity: "loud" }).problems.map((p) => p.message)).toEqual([
      "min_severity must be info, warning or critical",
    ]);
  });
});

describe("whsec_ keys", () => {
  it("whsec_ with no key bytes, or not base64, is refused", async () => {
    await expect(webhookKey("whsec_", "HOOK_X")).rejects.toThrow("HOOK_X: must be whsec_ followed by base64");
    await expect(webhookKey("whsec_not base64!", "HOOK_X")).rejects.toThrow(
      "HOOK_X: must be whsec_ followed by base64",
    );
    await expect(webhookKey(`whsec_${btoa("k")}`, "HOOK_X")).resolves.toBeDefined();
  });
});

describe("a uuid field", () => {
  it("takes a UUID in either case and gives it lowercase; anything else is an error", () => {
    expect(checkField("uuid", "0B0F7C3E-9D1A-4C2B-8E3F-5A6B7C8D9E0F")).toEqual({
      value: "0b0f7c3e-9d1a-4c2b-8e3f-5a6b7c8d9e0f",
    });
    expect(checkField("uuid", "0b0f7c3e-9d1a-4c2b-8e3f")).toHaveProperty("error");
    expect(checkField("uuid", 12)).toHaveProperty("error");
  });
});

describe("a duplicate client_order_id refusal", () => {
  it("is a 4xx naming it; a 5xx with the same words is not proof the order arrived", () => {
    const body = '{"title":"DUPLICATE_CLIENT_ORDER_ID"}';
    expect([400, 409, 499, 500, 503].map((status) => isDuplicateOrder(status, body))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(isDuplicateOrder(400, '{"message":"duplicate client order id"}')).toBe(true);
    expect(isDuplicateOrder(400, '{"message":"insufficient funds"}')).toBe(false);
  });
});

describe("a venue's three secrets and its window", () => {
  const intx = (vars: Record<string, string>) => parseVenue(vars, INTX);
  const all = { INTX_API_KEY: "k", INTX_API_SECRET: "cw==", INTX_API_PASSPHRASE: "p" };
  it("none set is no venue; some set is an error naming the missing ones, whichever they are", () => {
    expect(intx({})).toBeUndefined();
    expect(() => intx({ INTX_API_KEY: "k" })).toThrow("INTX_API_SECRET, INTX_API_PASSPHRASE: is not set");
    expect(() => intx({ INTX_API_SECRET: "cw==", INTX_API_PASSPHRASE: "p" })).toThrow("INTX_API_KEY: is not set");
  });
  it("INTX_WINDOW_SECONDS takes (0, 300] seconds", () => {
    expect(intx({ ...all, INTX_WINDOW_SECONDS: "30" })?.windowSeconds).toBe(30);
    expect(intx({ ...all, INTX_WINDOW_SECONDS: "300" })?.windowSeconds).toBe(300);
    expect(() => intx({ ...all, INTX_WINDOW_SECONDS: "301" })).toThrow("INTX_WINDOW_SECONDS: must be a number");
    expect(() => intx({ ...all, INTX_WINDOW_SECONDS: "0" })).toThrow("INTX_WINDOW_SECONDS: must be a number");
  });
});

describe("ACCOUNTS entries", () => {
  it('secrets must be a binding prefix ending in "_"', () => {
    const { problems } = parseAccounts(
      JSON.stringify([{ name: "alpha", venue: "intx", secrets: "INTX_ALPHA" }]),
      DEFAULT_VENUES,
    );
    expect(problems.map((p) => p.message)).toEqual([
      'secrets must be a binding prefix ending in "_", e.g. INTX_ALPHA_',
    ]);
  });
  it("a default entry with a problem fails closed, read-only exactly when it asked to be", () => {
    const closed = (readOnly: unknown) =>
      parseAccounts(
        JSON.stringify([{ name: "default", venue: "intx", read_only: readOnly, bogus: 1 }]),
        DEFAULT_VENUES,
      ).specs.map((s) => [s.venue, s.rules?.readOnly]);
    expect(closed(true)).toEqual([["intx", true]]);
    expect(closed(false)).toEqual([["intx", false]]);
  });
});

describe("a Discord alert over Discord's 2000-character content limit", () => {
  const alert = (text: string) => ({
    id: "a-1",
    at: "2026-12-06T00:00:00.000Z",
    suppressed: 0,
    type: "account.halted" as const,
    severity: "warning" as const,
    subject: "intx/alpha",
    venue: "intx",
    account: "alpha",
    text,
    ids: {},
  });
  // The escaped title line, 46 characters; every "_" of the text becomes the two characters \_.
  const head = "**\\[warning\\] account.halted \\(intx/alpha\\)**\n";
  const content = (text: string) => (JSON.parse(alertBody("discord", alert(text))) as { content: string }).content;
  it("is cut at 2000 characters, or 1999 rather than leave half an escape", () => {
    expect(head).toHaveLength(46);
    expect(content("_".repeat(1500))).toBe(`${head}${"\\_".repeat(977)}`); // 46 + 1954 = 2000
    expect(content(`a${"_".repeat(1500)}`)).toBe(`${head}a${"\\_".repeat(976)}`); // 2000 would end in a lone \
  });
});
