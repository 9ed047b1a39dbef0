// Every refusal path of the signing core and the venue configuration gives a clear error that names the input.
import { describe, expect, it } from "vitest";
import { parseBaseUrl, parseVenues } from "../../src/core/venue-config.ts";
import { ConfigError, SigningInputError } from "../../src/lib/errors.ts";
import { importHmacKey, secretBytes } from "../../src/lib/key.ts";
import { checkTimestamp, signHeaders } from "../../src/lib/sign.ts";
import { DEFAULT_VENUES } from "../../src/venues/index.ts";

const GOOD = {
  INTX_API_KEY: "k",
  INTX_API_SECRET: "c2VjcmV0LWJ5dGVz",
  INTX_API_PASSPHRASE: "p",
};

describe("refusals", () => {
  it("a secret that is not canonical base64 is a ConfigError naming the binding, not echoing the value", () => {
    for (const bad of ["not base64!", "c2VjcmV0", "c2VjcmV0LWJ5dGVz=", "", "YQ"]) {
      let caught: unknown;
      try {
        secretBytes(bad, "base64", "INTX_API_SECRET");
      } catch (err) {
        caught = err;
      }
      if (bad === "c2VjcmV0") continue; // valid: "secret"
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).binding).toBe("INTX_API_SECRET");
      if (bad.length > 3) expect((caught as Error).message).not.toContain(bad);
    }
    expect(Array.from(secretBytes("c2VjcmV0", "base64", "X"))).toEqual(Array.from(new TextEncoder().encode("secret")));
  });

  it("a non-integer, millisecond or negative timestamp is refused with what is wrong", async () => {
    expect(() => checkTimestamp(1700000000.5)).toThrow(SigningInputError);
    expect(() => checkTimestamp(1700000000.5)).toThrow("whole seconds");
    expect(() => checkTimestamp(1700000000000)).toThrow("milliseconds? divide by 1000");
    expect(() => checkTimestamp(-1)).toThrow("out of range");
    expect(() => checkTimestamp(Number.NaN)).toThrow(SigningInputError);
    const key = await importHmacKey(secretBytes("c2VjcmV0", "base64", "X"));
    await expect(
      signHeaders({ apiKey: "k", passphrase: "p", key }, { method: "GET", url: "https://v.test/rest/a" }, 1.5),
    ).rejects.toThrow(SigningInputError);
    expect(checkTimestamp(1700000000)).toBe(1700000000);
  });

  it("a missing binding is reported by name, and the other venue keeps working", () => {
    const setup = parseVenues({ ...GOOD, CDE_API_KEY: "k", CDE_API_PASSPHRASE: "p" }, DEFAULT_VENUES);
    expect(setup.venues.intx).toBeDefined();
    expect(setup.venues.cde).toBeUndefined();
    expect(setup.problems).toEqual([
      { venue: "cde", account: "default", binding: "CDE_API_SECRET", message: expect.any(String) },
    ]);
  });

  it("a base URL must be https, except http on a loopback host", () => {
    expect(parseBaseUrl("https://api.international.coinbase.com", "B")).toBe("https://api.international.coinbase.com");
    for (const ok of ["http://127.0.0.1:8788", "http://localhost:8788", "http://[::1]:8788"]) {
      expect(parseBaseUrl(ok, "B")).toBe(ok);
    }
    for (const bad of [
      "http://example.com",
      "http://127.0.0.2",
      "ftp://x.test",
      "api.example.com",
      "https://u:p@x.test",
    ]) {
      expect(() => parseBaseUrl(bad, "INTX_BASE_URL")).toThrow(ConfigError);
    }
    expect(() => parseBaseUrl("http://example.com", "INTX_BASE_URL")).toThrow("INTX_BASE_URL: must use https://");
    expect(() => parseBaseUrl("https://x.test/api", "B")).toThrow("origin only");
    const setup = parseVenues({ ...GOOD, INTX_BASE_URL: "http://api.example.com" }, DEFAULT_VENUES);
    expect(setup.venues.intx).toBeUndefined();
    expect(setup.problems.map((p) => p.binding)).toEqual(["INTX_BASE_URL"]);
  });
});
