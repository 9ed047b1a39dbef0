/**
 * `CoinbaseClient`: `fetch` for Coinbase INTX and CDE that signs every request and keeps its timestamp inside the
 * venue's window. It learns the venue's clock from the `Date` of every answer, signs with the whole second nearest
 * the venue's now, and when the venue still refuses the timestamp it learns from that refusal and retries once,
 * re-signed (the venue refused before processing, so this is safe even for orders). A redirect is returned, never
 * followed with a signed request. Zero dependencies; `fetch`, the clock and the shared store are injectable.
 */
import { venueSample } from "./date.ts";
import { type ClockEstimate, OffsetEstimator, timestampFor } from "./estimator.ts";
import { importHmacKey, type SecretEncoding, secretBytes } from "./key.ts";
import { isTimestampRejection } from "./rejection.ts";
import { signRequest } from "./sign.ts";
import type { EstimateStore } from "./store.ts";

const REFUSAL_BODY_LIMIT = 16_384;
const SHARED_READ_TIMEOUT_MS = 250;

export interface CoinbaseClientOptions {
  apiKey: string;
  /** The API secret as Coinbase showed it (base64), or raw text with `secretEncoding: "raw"`. */
  secret: string;
  passphrase: string;
  secretEncoding?: SecretEncoding;
  fetch?: (request: Request) => Promise<Response>;
  /** Local epoch milliseconds. */
  now?: () => number;
  /** Where to share the learned estimate with other clients; read once, before the first request. */
  store?: EstimateStore;
  /** Clock drift allowance, ppm: old samples widen by this much of their age. Default 100. */
  driftPpm?: number;
  /** The venue's timestamp window, seconds, to tell a refused timestamp from its `Date`. Default 5. */
  windowSeconds?: number;
}

/** How the client signed the request that got a response: its timestamp, the attempts, the estimate it used. */
export interface SignedWith {
  timestamp: number;
  attempts: number;
  estimate: ClockEstimate | undefined;
}

export class CoinbaseClient {
  readonly estimator: OffsetEstimator;
  readonly #options: CoinbaseClientOptions;
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #now: () => number;
  readonly #key: Promise<CryptoKey>;
  #seeded: Promise<void> | undefined;

  constructor(options: CoinbaseClientOptions) {
    if (!options.apiKey) throw new TypeError("apiKey is required");
    this.#options = options;
    this.estimator = new OffsetEstimator({ driftPpm: options.driftPpm ?? 100 });
    this.#fetch = options.fetch ?? ((request) => fetch(request));
    this.#now = options.now ?? Date.now;
    // A bad secret throws here, at construction, naming the option (never its value).
    this.#key = importHmacKey(secretBytes(options.secret, options.secretEncoding ?? "base64", "secret"));
  }

  /** Like `fetch`, signed. The response is the venue's; `signedWith(response)` says how it was signed. */
  async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
    const identity = { apiKey: this.#options.apiKey, passphrase: this.#options.passphrase, key: await this.#key };
    this.#seeded ??= this.#seed();
    await this.#seeded;
    for (let attempt = 1; ; attempt++) {
      // The clock is read after the last await before the fetch: a slow caller never sends a stale timestamp.
      const now = this.#now();
      const estimate = this.estimator.estimate(now);
      const timestamp = timestampFor(now, estimate);
      const unsigned = new Request(request, { body });
      // The venues render errors as JSON only when asked (INTX's Javalin answers plain text otherwise).
      if (!unsigned.headers.has("accept")) unsigned.headers.set("accept", "application/json");
      const signed = await signRequest(unsigned, identity, timestamp);
      const tSend = this.#now();
      const response = await this.#fetch(signed);
      const tRecv = this.#now();
      const sample = venueSample(response, tSend, tRecv);
      // A refusal is a short error body; a long one is not read (it cannot be the venue's timestamp refusal).
      const small = Number(response.headers.get("content-length") ?? "0") <= REFUSAL_BODY_LIMIT;
      const evidence = { timestamp, windowSeconds: this.#options.windowSeconds ?? 5, date: sample?.date };
      const refused =
        attempt === 1 &&
        (response.status === 400 || response.status === 401) &&
        small &&
        isTimestampRejection(response.status, (await response.clone().text()).slice(0, REFUSAL_BODY_LIMIT), evidence);
      if (sample && this.estimator.add(sample, { rejected: refused })) this.#offer(tRecv);
      if (refused) {
        await response.body?.cancel();
        continue; // re-signed with what this refusal just taught
      }
      signedWith.set(response, { timestamp, attempts: attempt, estimate });
      return response;
    }
  }

  /** Seeds from the shared store once, waiting at most 250 ms; a store that fails or hangs is skipped. */
  async #seed(): Promise<void> {
    const { store } = this.#options;
    if (!store) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), SHARED_READ_TIMEOUT_MS);
    });
    const read = Promise.resolve()
      .then(() => store.read())
      .catch(() => null);
    const shared = await Promise.race([read, late]);
    if (timer !== undefined) clearTimeout(timer);
    if (shared) this.estimator.seed(shared);
  }

  #offer(now: number): void {
    const estimate = this.estimator.estimate(now);
    if (estimate) this.#options.store?.offer(estimate, this.#options.driftPpm ?? 100).catch(() => undefined);
  }
}

const signedWith = new WeakMap<Response, SignedWith>();

/** How `CoinbaseClient.fetch` signed the request that got `response`, or undefined for another response. */
export function signedWithOf(response: Response): SignedWith | undefined {
  return signedWith.get(response);
}
