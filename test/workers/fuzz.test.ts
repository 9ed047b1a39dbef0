// Hostile input at every route: random methods, paths, headers, encodings and bodies. Never a 500, never a
// forwarded request without a valid token, never a request signed by an account the token may not use, and every
// error is the documented JSON shape.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { SECRET_B64 } from "../support/fake-venue.ts";
import { scanConsole } from "../support/leaks.ts";

const TOKEN = "fuzz-token-0123456789abcdef";
const bindings = workerEnv({
  INTX_BASE_URL: "https://intx.venue.test",
  INTX_API_KEY: "intx-key",
  INTX_API_SECRET: SECRET_B64,
  INTX_API_PASSPHRASE: "intx-pass",
  CDE_BASE_URL: "https://cde.venue.test",
  CDE_API_KEY: "cde-key",
  CDE_API_SECRET: SECRET_B64,
  CDE_API_PASSPHRASE: "cde-pass",
  ACCOUNTS: JSON.stringify([
    { name: "alpha", venue: "intx" },
    { name: "beta", venue: "intx" },
  ]),
  INTX_ALPHA_API_KEY: "alpha-key",
  INTX_ALPHA_API_SECRET: SECRET_B64,
  INTX_ALPHA_API_PASSPHRASE: "alpha-pass",
  INTX_BETA_API_KEY: "beta-key",
  INTX_BETA_API_SECRET: SECRET_B64,
  INTX_BETA_API_PASSPHRASE: "beta-pass",
  RELAY_TOKENS: JSON.stringify([
    { name: "bot", token: TOKEN, allow: ["GET /cde/rest/*", "POST /intx/api/v1/orders", "GET /intx/alpha/api/v1/*"] },
  ]),
});

let forwarded: Request[] = [];
beforeAll(() => {
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    forwarded.push(new Request(input, init));
    return Response.json({ ok: true }, { headers: { date: new Date().toUTCString() } });
  });
  // Silenced, but still scanned for leaks.
  for (const m of ["log", "warn"] as const) vi.spyOn(console, m).mockImplementation((...a) => scanConsole(a));
});
afterAll(() => vi.restoreAllMocks());

const methods = fc.constantFrom(
  "GET",
  "POST",
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "HEAD",
  "OPTIONS",
  "PROPFIND",
  "get",
);
const segment = fc.oneof(
  fc.constantFrom(
    "intx",
    "cde",
    "api",
    "v1",
    "rest",
    "orders",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2F",
    "%00",
    "jobs",
    "hooks",
    "health",
    "clock",
    "alpha",
    "beta",
    "default",
    "ALPHA",
    "%61lpha",
    "alpha;",
  ),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: "binary", maxLength: 6 }),
);
const path = fc.array(segment, { maxLength: 7 }).map((s) => `/${s.join("/")}`);
const prefixed = fc
  .tuple(
    fc.constantFrom(
      "/intx/api/v1/",
      "/cde/rest/",
      "/intx/",
      "/cde/",
      "/hooks/",
      "/jobs/",
      "/intx/alpha/api/v1/",
      "/intx/beta/api/v1/",
      "/intx/default/api/v1/",
      "/intx/alpha/../beta/api/v1/",
      "/intx/ALPHA/api/v1/",
    ),
    path,
  )
  .map(([p, rest]) => p + rest.slice(1));
// Near-valid requests, so the property also covers the paths that do get forwarded.
const allowedPath = fc.constantFrom(
  "/cde/rest/funding-rate",
  "/cde/rest/v2/positions",
  "/intx/api/v1/orders",
  "/intx/alpha/api/v1/portfolios",
  "/intx/beta/api/v1/portfolios",
);
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant(`Bearer ${TOKEN}`),
  fc.string({ maxLength: 40 }).map((t) => `Bearer ${t}`),
  fc.string({ maxLength: 40 }),
  fc.constant(`bearer ${TOKEN}`),
  fc.constant(`Bearer ${TOKEN} `),
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.json(),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
);
const contentType = fc.constantFrom(
  undefined,
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=utf-8",
  "",
);

describe("fuzz: every route", () => {
  it("never answers 500, never forwards without the valid token, always answers JSON errors", async () => {
    let forwardedRuns = 0;
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        methods,
        fc.oneof(path, prefixed, allowedPath),
        fc.string({ maxLength: 20 }),
        authorization,
        body,
        contentType,
        fc.ipV4(),
        async (method, p, query, auth, b, type, ip) => {
          const headers = new Headers({ "cf-connecting-ip": ip });
          try {
            if (auth !== undefined) headers.set("authorization", auth);
          } catch {
            return; // not a legal header value; the platform would refuse it before the Worker
          }
          if (type !== undefined) headers.set("content-type", type);
          let url: string;
          try {
            url = new URL(`https://relay.test${p}?${encodeURIComponent(query)}`).href;
          } catch {
            return;
          }
          const m = method.toUpperCase();
          const withBody = b !== undefined && m !== "GET" && m !== "HEAD";
          forwarded = [];
          const ctx = createExecutionContext();
          const response = await worker.fetch(
            new Request(url, { method, headers, body: withBody ? (b as string | Uint8Array) : undefined }),
            bindings,
            ctx,
          );
          await waitOnExecutionContext(ctx);
          expect(response.status).toBeLessThan(500);
          statuses.add(response.status);
          if (forwarded.length > 0) {
            forwardedRuns++;
            expect(auth?.trim()).toBe(`Bearer ${TOKEN}`); // header values are whitespace-trimmed by the platform
            const sent = forwarded[0] as Request;
            const route = `${sent.method} ${new URL(sent.url).pathname} ${sent.headers.get("cb-access-key")}`;
            // Exactly what the token allows, each signed by its own account: never beta, never default's reads.
            expect(
              /^GET \/rest\/.* cde-key$|^POST \/api\/v1\/orders intx-key$|^GET \/api\/v1\/.* alpha-key$/.test(route),
            ).toBe(true);
          }
          if (response.status >= 400 && m !== "HEAD") {
            const json = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
            expect(typeof json.error?.code).toBe("string");
            expect(typeof json.error?.message).toBe("string");
          }
        },
      ),
      // A fixed seed: with a random one, no request at all is forwarded about one run in 3000 (see below).
      { numRuns: 300, seed: 20261126 },
    );
    // The generators must reach the interesting region: some requests forwarded, and each refusal kind seen.
    expect(forwardedRuns).toBeGreaterThan(0);
    for (const status of [200, 400, 401, 403, 404]) expect(statuses).toContain(status);
  });
});
