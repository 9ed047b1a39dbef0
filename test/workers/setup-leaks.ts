// Runs before every workerd test file: captures console lines and every response of the Worker's fetch handler,
// and learns every Coinbase signature made in the file (REST and market-data subscriptions) and the prehash it signed, at the HMAC itself
// (`crypto.subtle.sign`), so whatever carries the request (the real fetch, a test's `vi.spyOn(globalThis, "fetch")`,
// an injected fetch) nothing signed goes unseen. After the file, none of the captured text may contain a secret seen
// in the bindings, a CB-ACCESS-SIGN value or the prehash it signed. test/workers/leaks.test.ts checks the scanner.
// A test that replaces a console method hands its lines on with `scanConsole` (test/support/leaks.ts).
import { afterAll, expect } from "vitest";
import worker from "../../src/index.ts";
import { encodeBase64 } from "../../src/lib/base64.ts";
import { consoleLine, findLeaks, LEAK_SCANNER, type LeakScanner } from "../support/leaks.ts";

const captured: string[] = [];
const secrets = new Set<string>();
(globalThis as Record<symbol, unknown>)[LEAK_SCANNER] = { captured, secrets } satisfies LeakScanner;

function addSecret(value: unknown): void {
  if (typeof value === "string" && value.length >= 8) secrets.add(value);
}

/** Secret material from a bindings object: *_SECRET, *_PASSPHRASE, and tokens/secrets inside JSON bindings. */
function collect(env: unknown): void {
  if (typeof env !== "object" || env === null) return;
  for (const [name, value] of Object.entries(env)) {
    if (/SECRET|PASSPHRASE|TOKEN/.test(name)) addSecret(value);
    if (typeof value === "string" && /^\s*[[{]/.test(value)) {
      try {
        JSON.parse(value, (key, v) => {
          if (/^(token|secret|passphrase)$/i.test(key)) addSecret(v);
          return v;
        });
      } catch {
        // not JSON: nothing to collect
      }
    }
  }
}

for (const method of ["log", "info", "warn", "error", "debug"] as const) {
  const original = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    captured.push(consoleLine(args));
    original(...args);
  };
}

const handler = worker.fetch;
worker.fetch = async (request, env, ctx) => {
  collect(env);
  const response = await handler(request, env, ctx);
  captured.push([...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n"));
  // A WebSocket handshake has no body to read (and cannot be cloned): its frames are scanned by its test.
  if (response.webSocket) return response;
  const copy = response.clone();
  // As bytes: workerd warns when .text() meets a type it does not know as text (GET /orders's NDJSON export).
  captured.push(new TextDecoder().decode(await copy.arrayBuffer()));
  return response;
};

/**
 * A Coinbase prehash (docs/protocol.md, "Signing"): seconds (the legacy vectors' decimal too), the upper-cased
 * method, then the path. The other HMACs skewguard computes (console sessions, Standard Webhooks) do not start so,
 * and their MACs are meant to be shown (a cookie, a webhook-signature header).
 */
const PREHASH = /^\d{10}(?:\.\d+)?[A-Z][!#$%&'*+\-.^_`|~0-9A-Z]*\//;
/** A market-data subscription's prehash (docs/protocol.md, "Market data"): seconds, key, the venue's word, passphrase. */
const FEED_PREHASH = /^\d{10}.+CBINTLMD/;
const decoder = new TextDecoder();

function bytesOf(data: BufferSource): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const subtle = crypto.subtle;
const hmacSign = subtle.sign.bind(subtle);
subtle.sign = async (...[algorithm, key, data]: Parameters<SubtleCrypto["sign"]>) => {
  const name = typeof algorithm === "string" ? algorithm : algorithm.name;
  // Read now: the signer reuses its buffer for the next signature once this call has copied it.
  const text = name.toUpperCase() === "HMAC" ? decoder.decode(bytesOf(data)) : "";
  const mac = await hmacSign(algorithm, key, data);
  if (PREHASH.test(text) || FEED_PREHASH.test(text)) {
    addSecret(encodeBase64(new Uint8Array(mac)));
    addSecret(text);
  }
  return mac;
};

const outbound = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const sign = request.headers.get("cb-access-sign");
  if (sign) {
    addSecret(sign);
    const body = request.body ? await request.clone().text() : "";
    const ts = request.headers.get("cb-access-timestamp") ?? "";
    addSecret(`${ts}${request.method}${new URL(request.url).pathname}${body}`);
  }
  return outbound(request);
};

afterAll(() => {
  expect(findLeaks(secrets, captured), "secret material reached a log line or a response").toEqual([]);
});
