/**
 * Benchmark Worker: signs the same messages with three engines inside workerd. `Date.now()` does not advance
 * without I/O in workerd, so the caller times each request from outside and subtracts an n=0 request.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { encodeBase64 } from "../../src/lib/base64.ts";
import { KeyCache, secretBytes } from "../../src/lib/key.ts";
import { signature } from "../../src/lib/sign.ts";

const SECRET = "QiM6irV9cW5NJo3xei+MLD0a4GLnsz+HSFwucGXdt+c8gZwRUxTltMfh09w8pZ2VHXKdM8LzqxhaMUg4WHSsvQ==";
const BODY =
  '{"client_order_id":"c-000001","side":"BUY","size":"0.01","tif":"IOC","type":"MARKET","instrument":"BTC-PERP"}';
const cache = new KeyCache();
const encoder = new TextEncoder();
// The baselines get their key bytes decoded once, so only the engine itself is measured.
const KEY_BYTES = secretBytes(SECRET, "base64", "BENCH_SECRET");

type Engine = (i: number) => Promise<string> | string;

let RAW_KEY: CryptoKey | undefined;
const MSG = encoder.encode(`1800000000POST/api/v1/orders${BODY}`);
const engines: Record<string, Engine> = {
  // The ceiling: WebCrypto alone on one pre-encoded message (no prehash, no base64), for scale.
  "webcrypto-floor": async () => {
    RAW_KEY ??= await crypto.subtle.importKey("raw", KEY_BYTES, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    await crypto.subtle.sign("HMAC", RAW_KEY, MSG);
    return "";
  },
  // The library's signer as CoinbaseClient uses it: a key imported once, then signature() per request.
  library: async (i) => {
    RAW_KEY ??= await crypto.subtle.importKey("raw", KEY_BYTES, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return signature(RAW_KEY, 1_800_000_000 + i, "POST", "/api/v1/orders", BODY);
  },
  // A KeyCache lookup (fingerprint of the secret) on every request: the CLI's path, and the Worker's before it kept
  // each account's key by its configuration object.
  skewguard: async (i) => {
    const key = cache.get(SECRET, "base64", "BENCH_SECRET");
    return signature(key instanceof CryptoKey ? key : await key, 1_800_000_000 + i, "POST", "/api/v1/orders", BODY);
  },
  // aws4fetch's approach: importKey on every call.
  "import-per-call": async (i) => {
    const key = await crypto.subtle.importKey("raw", KEY_BYTES, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return signature(key, 1_800_000_000 + i, "POST", "/api/v1/orders", BODY);
  },
  // ccxt's engine: pure-JS HMAC-SHA256.
  noble: (i) => encodeBase64(hmac(sha256, KEY_BYTES, encoder.encode(`${1_800_000_000 + i}POST/api/v1/orders${BODY}`))),
};

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const engine = engines[url.searchParams.get("engine") ?? ""];
    const n = Number(url.searchParams.get("n") ?? "0");
    if (!engine || !Number.isInteger(n) || n < 0 || n > 1_000_000) return new Response("bad query", { status: 400 });
    let last = "";
    for (let i = 0; i < n; i++) last = await engine(i);
    return new Response(last);
  },
} satisfies ExportedHandler;
