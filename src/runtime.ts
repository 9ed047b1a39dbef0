/**
 * One runtime per isolate: what skewguard keeps between requests, built once from the Worker's bindings (`env`) and
 * the venues it serves: the configuration (`config(env)`), each venue endpoint's clock, its metrics' counters, every imported key (accounts'
 * HMAC keys, webhook routes' and sinks' Standard Webhooks keys, the console's session key), and the configuration
 * problems already raised. Nothing else in src/ keeps state at module level, so a test that builds a new `env` gets a
 * new runtime: a cold clock, no keys.
 */
import { Keys } from "./adapters/keys.ts";
import { VenueClock } from "./adapters/venue-clock.ts";
import { type Config, parseConfig } from "./config.ts";
import { IsolateMetrics } from "./core/metrics.ts";
import { DEFAULT_VENUES, type Venues } from "./venues/index.ts";

export class Runtime {
  readonly config: Config;
  /** Configuration problems this isolate has raised as `config.problem` alerts (raised once each). */
  readonly raisedProblems = new Set<string>();
  /** Every key this isolate imported (adapters/keys.ts). */
  readonly keys = new Keys();
  /** This isolate's counters for `GET /metrics` (core/metrics.ts): requests, venue answers, retries, the gates. */
  readonly metrics = new IsolateMetrics();
  readonly #clocks = new Map<string, VenueClock>();
  readonly #ids = new Map<string, DurableObjectId>();

  constructor(env: object, venues: Venues) {
    this.config = parseConfig(env, venues);
  }

  /** This isolate's clock for one venue endpoint (by venue and base URL, so a sandbox has its own). */
  clock(venue: string, baseUrl: string): VenueClock {
    const id = `${venue} ${baseUrl}`;
    let clock = this.#clocks.get(id);
    if (!clock) {
      clock = new VenueClock();
      this.#clocks.set(id, clock);
    }
    return clock;
  }

  /**
   * The id of the Durable Object `name` in `namespace`, derived once (an id is plain data, kept across requests; a
   * stub is made per request from it).
   */
  objectId(namespace: { idFromName(name: string): DurableObjectId }, label: string, name: string): DurableObjectId {
    const key = `${label} ${name}`;
    let id = this.#ids.get(key);
    if (!id) {
      id = namespace.idFromName(name);
      this.#ids.set(key, id);
    }
    return id;
  }

  /** The key `id` names (`hook tv`, `whsec ALERT_SECRET`, `session`), imported by `load` on first use. */
  key(id: string, load: () => Promise<CryptoKey>): CryptoKey | Promise<CryptoKey> {
    return this.keys.get(id, load);
  }
}

const runtimes = new WeakMap<object, Runtime>();

/**
 * The runtime of `env`, built on first use and kept for the isolate's life. The Worker's handlers name the venues it
 * serves on first use (src/worker.ts); every later call gets that runtime.
 */
export function runtime(env: object, venues: Venues = DEFAULT_VENUES): Runtime {
  let built = runtimes.get(env);
  if (!built) {
    built = new Runtime(env, venues);
    runtimes.set(env, built);
  }
  return built;
}

/** The configuration of `env` (see `runtime`). */
export function config(env: object, venues?: Venues): Config {
  return runtime(env, venues).config;
}
