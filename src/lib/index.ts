/**
 * skewguard's library entry: byte-exact Coinbase INTX and CDE request signing with WebCrypto, and a clock that keeps
 * every signed timestamp inside the venue's window. Zero dependencies, no `cloudflare:*` import: it runs unchanged in
 * Workers, Node >= 20, Deno, Bun and browsers. The skewguard Worker signs and keeps its clock with this same code,
 * importing the modules below directly. This entry exports exactly what docs/library.md documents: add an export
 * here only with its line there.
 */

export { CoinbaseClient, type CoinbaseClientOptions, type SignedWith, signedWithOf } from "./client.ts";
export { venueSample } from "./date.ts";
export { ConfigError, SigningInputError } from "./errors.ts";
export {
  type ClockEstimate,
  type ClockSample,
  type EstimatorOptions,
  OffsetEstimator,
  timestampFor,
} from "./estimator.ts";
export { importHmacKey, KeyCache, type SecretEncoding, secretBytes } from "./key.ts";
export type { Body } from "./prehash.ts";
export { isTimestampRejection } from "./rejection.ts";
export { type AccessHeaders, type SigningIdentity, signHeaders, signRequest } from "./sign.ts";
export { type EstimateStore, MemoryEstimateStore } from "./store.ts";
