/**
 * One runtime per isolate: what skewguard keeps between requests, built once from the Worker's bindings (`env`) and
 * the venues it serves: the configuration (`config(env)`), each venue endpoint's clock, every imported key (accounts'
 * HMAC keys, webhook routes' and sinks' Standard Webhooks keys, the console's session key), and the configuration
 * problems already raised. Nothing else in src/ keeps state at module level, so a test that builds a new `env` gets a
 * new runtime: a cold clock, no keys.
 */
import { VenueClock } from "./adapters/venue-clock.ts";
import { type Config, parseConfig } from "./config.ts";
import { DEFAULT_VENUES, type Venues } from "./venues/index.ts";

export class Runtime {
  readonly config: Config;
  /** Configuration problems this isolate has raised as `config.problem` alerts (raised once each). */
  readonly raisedProblems = new Set<string>();
  readonly #clocks = new Map<string, VenueClock>();
  readonly #keys = new Map<string, CryptoKey | Promise<CryptoKey>>();

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
   * The key named `id` (`account intx/alpha`, `hook tv`, `whsec ALERT_SECRET`, `session`), imported by `load` on
   * first use: a promise until the import settles, then the key itself (so a warm lookup has nothing to await). A
   * failed import is forgotten, and the next use tries again. The configuration does not change for the runtime's
   * life, so a name stands for one secret.
   */
  key(id: string, load: () => Promise<CryptoKey>): CryptoKey | Promise<CryptoKey> {
    const known = this.#keys.get(id);
    if (known) return known;
    const pending = load();
    this.#keys.set(id, pending);
    pending.then(
      (key) => this.#keys.set(id, key),
      () => this.#keys.delete(id),
    );
    return pending;
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
