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

/**
 * A stand-in for the `DELIVERIES` queue that keeps what is sent in `sent`. With the real queue, this runtime's own
 * consumer takes each message about a second later, with the base test env (where a test's venues and accounts are
 * not configured), and writes its own outcome into D1 under the test. Tests drive the consumer by hand instead.
 */
export function recordingQueue<Body>(): { queue: Queue<Body>; sent: Body[] } {
  const sent: Body[] = [];
  const queue = {
    send: async (body: Body) => {
      sent.push(body);
    },
    sendBatch: async (batch: Iterable<MessageSendRequest<Body>>) => {
      for (const { body } of batch) sent.push(body);
    },
  };
  // Only send and sendBatch exist: a test that needs more of Queue fails on the missing method, not silently.
  return { queue: queue as unknown as Queue<Body>, sent };
}
