// Runs before every workerd test file: captures console lines, every response of the Worker's fetch handler,
// and every signed outbound request. After the file, none of the captured text may contain a secret seen in
// the bindings, a CB-ACCESS-SIGN value that was sent, or the prehash it signed.
import { afterAll, expect } from "vitest";
import worker from "../../src/index.ts";
import { findLeaks } from "../support/leaks.ts";

const captured: string[] = [];
const secrets = new Set<string>();

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
    captured.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
    original(...args);
  };
}

const handler = worker.fetch;
worker.fetch = async (request, env, ctx) => {
  collect(env);
  const response = await handler(request, env, ctx);
  const copy = response.clone();
  captured.push([...copy.headers].map(([k, v]) => `${k}: ${v}`).join("\n"));
  captured.push(await copy.text());
  return response;
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
