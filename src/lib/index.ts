/**
 * skewguard's library entry: byte-exact Coinbase INTX and CDE request signing with WebCrypto, and a clock that keeps
 * every signed timestamp inside the venue's window. Zero dependencies, no `cloudflare:*` import: it runs unchanged in
 * Workers, Node >= 20, Deno, Bun and browsers. The skewguard Worker signs and keeps its clock with this same code.
 */

export { decodeBase64, encodeBase64 } from "./base64.ts";
export { CoinbaseClient, type CoinbaseClientOptions, type SignedWith, signedWithOf } from "./client.ts";
export { isJson, parseImfFixdate, sampleFromResponse, venueSample } from "./date.ts";
export { ConfigError, SigningInputError } from "./errors.ts";
export {
  type ClockEstimate,
  type ClockSample,
  DRIFT_PPM,
  type EstimatorOptions,
  halfWidthMs,
  OffsetEstimator,
  timestampFor,
} from "./estimator.ts";
export { importHmacKey, KeyCache, type SecretEncoding, secretBytes } from "./key.ts";
export { type Body, prehash, requestPath, signingMethod, writePrehash } from "./prehash.ts";
export { isAuthRefusal, isDuplicateOrder, isTimestampRejection, venueMessage } from "./rejection.ts";
export {
  type AccessHeaders,
  checkTimestamp,
  type SigningIdentity,
  signature,
  signHeaders,
  signRequest,
} from "./sign.ts";
export {
  type Attempt,
  type AttemptSlot,
  type Failure,
  type Observation,
  type ReadAnswer,
  type RetryPolicy,
  type SignedAnswer,
  type SignedCallSteps,
  signedCall,
} from "./signed-call.ts";
export {
  type EstimateStore,
  MemoryEstimateStore,
  readShared,
  SHARED_READ_TIMEOUT_MS,
  sharedReadWait,
  shouldReplace,
} from "./store.ts";
export { withTimeout } from "./timeout.ts";
