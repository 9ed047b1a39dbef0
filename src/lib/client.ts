/**
 * `CoinbaseClient`: `fetch` for Coinbase INTX and CDE that signs every request and keeps its timestamp inside the
 * venue's window. It learns the venue's clock from the `Date` of every answer, signs with the whole second nearest
 * the venue's now, and when the venue still refuses the timestamp it learns from that refusal and retries once,
 * re-signed (the venue refused before processing, so this is safe even for orders). A redirect is returned, never
 * followed with a signed request. Zero dependencies; `fetch`, the clock and the shared store are injectable.
 */
import { type ClockEstimate, DRIFT_PPM, OffsetEstimator } from "./estimator.ts";
import { importHmacKey, type SecretEncoding, secretBytes } from "./key.ts";
import { signRequest } from "./sign.ts";
import { type Attempt, type ReadAnswer, signedCall } from "./signed-call.ts";
import { type EstimateStore, readShared, sharedReadWait } from "./store.ts";

const REFUSAL_BODY_LIMIT = 16_384;

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
    this.estimator = new OffsetEstimator({ driftPpm: options.driftPpm ?? DRIFT_PPM });
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
    const { response, attempt } = await signedCall<Request>({
      now: this.#now,
      estimator: this.estimator,
      windowSeconds: this.#options.windowSeconds ?? 5,
      sign: (timestamp) => {
        const unsigned = new Request(request, { body });
        // The venues render errors as JSON only when asked (INTX's Javalin answers plain text otherwise).
        if (!unsigned.headers.has("accept")) unsigned.headers.set("accept", "application/json");
        return signRequest(unsigned, identity, timestamp);
      },
      send: (attempt) => this.#fetch(attempt.signed),
      read: refusalText,
      observe: ({ sample, rejected, tRecv }) => {
        if (sample && this.estimator.add(sample, { rejected })) this.#offer(tRecv);
      },
    });
    signedWith.set(response, { timestamp: attempt.timestamp, attempts: attempt.number, estimate: attempt.estimate });
    return response;
  }

  /** Seeds from the shared store once, waiting at most 250 ms; a store that fails or hangs is skipped. */
  async #seed(): Promise<void> {
    const { store } = this.#options;
    if (!store) return;
    const shared = await sharedReadWait(readShared(store));
    if (shared) this.estimator.seed(shared);
  }

  #offer(now: number): void {
    const estimate = this.estimator.estimate(now);
    if (estimate) this.#options.store?.offer(estimate, this.#options.driftPpm ?? DRIFT_PPM).catch(() => undefined);
  }
}

/**
 * The `read` step: the response as it came, and the text of a first 400 or 401 that could be the venue's timestamp
 * refusal (a refusal is a short error body; a long one is not read, and a re-signed attempt has no second re-sign).
 */
async function refusalText(response: Response, attempt: Attempt<Request>): Promise<ReadAnswer> {
  const small = Number(response.headers.get("content-length") ?? "0") <= REFUSAL_BODY_LIMIT;
  const possible = !attempt.resigned && (response.status === 400 || response.status === 401) && small;
  const text = possible ? (await response.clone().text()).slice(0, REFUSAL_BODY_LIMIT) : undefined;
  return { response, text };
}

const signedWith = new WeakMap<Response, SignedWith>();

/** How `CoinbaseClient.fetch` signed the request that got `response`, or undefined for another response. */
export function signedWithOf(response: Response): SignedWith | undefined {
  return signedWith.get(response);
}
