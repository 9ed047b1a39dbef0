// The Worker env for a test: the real bindings from wrangler.toml and vitest.config.ts (D1, queues, Durable
// Objects), with the test's own vars and secrets on top. Each call is a new object, so `config(env)` parses it anew.
import { env } from "cloudflare:workers";

export function workerEnv(overrides: Record<string, unknown>): Env {
  // Overrides add bindings `Env` does not declare (hook secrets, fakes), hence the one cast.
  return { ...env, ...overrides } as Env;
}

/** `env` with a D1 whose every query throws, as when D1 is down. */
export function withBrokenD1(env: Env): Env {
  const DB = new Proxy(env.DB, {
    get: (target, key) =>
      key === "prepare"
        ? () => {
            throw new Error("D1 is down");
          }
        : Reflect.get(target, key),
  });
  return { ...env, DB };
}
