/**
 * skewguard as built from src/, with its Durable Object namespaces wrapped so that every call to a Durable Object is
 * counted (npm run bench, bench/do-calls.ts). Not deployed.
 *
 * Why a wrapper: neither workerd nor Miniflare reports Durable Object invocations to the outside (no log line, no
 * counter), and the simulator never sees them. So this Worker re-exports skewguard's Durable Object classes
 * unchanged, and calls skewguard's fetch handler with an `env` whose RATE_GATE, CLOCK_STATE and HOOK_LEDGER are
 * proxies: each method called on a stub they return (`admit`, `read`, `offer`, `fetch`...) is one round trip to a
 * Durable Object and adds 1 to that namespace's count before going to the real stub. `get`, `getByName` and
 * `idFromName` are local and not counted. The objects themselves get the real `env` from the runtime, so their own work is not counted.
 * `GET /_bench/do-calls` answers the counts since the last `?reset`, and does not reach skewguard.
 */
import skewguard from "../../src/index.ts";

export { ClockState, HookLedger, RateGate } from "../../src/index.ts";

const NAMESPACES = ["RATE_GATE", "CLOCK_STATE", "HOOK_LEDGER"] as const;
type Namespace = (typeof NAMESPACES)[number];

let calls: Record<Namespace, number> = { RATE_GATE: 0, CLOCK_STATE: 0, HOOK_LEDGER: 0 };

/** A stub whose methods count one call each; `then` is left alone, so awaiting a stub is not a call. */
function countedStub<T extends object>(stub: T, name: Namespace): T {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof prop !== "string" || prop === "then" || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls[name]++;
        return (target as Record<string, (...a: unknown[]) => unknown>)[prop]?.(...args);
      };
    },
  });
}

/** A namespace whose stubs count their calls. Its own methods are bound to it: they are native and need their `this`. */
function countedNamespace<T extends object>(namespace: T, name: Namespace): T {
  return new Proxy(namespace, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getByName") {
        return (...args: unknown[]) => countedStub(Reflect.apply(value, target, args) as object, name);
      }
      return value.bind(target);
    },
  });
}

// One wrapped env per runtime env, so that skewguard's per-env caches (config(env)) work as they do unwrapped.
const wrapped = new WeakMap<object, Env>();
function countedEnv(env: Env): Env {
  let counted = wrapped.get(env);
  if (!counted) {
    const overrides = Object.fromEntries(
      NAMESPACES.map((name) => [name, countedNamespace(env[name] as unknown as object, name)]),
    );
    counted = new Proxy(env, {
      get: (target, prop) => (prop in overrides ? overrides[prop as string] : Reflect.get(target, prop)),
    });
    wrapped.set(env, counted);
  }
  return counted;
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/_bench/do-calls") {
      const answer = Response.json(calls);
      if (url.searchParams.has("reset")) calls = { RATE_GATE: 0, CLOCK_STATE: 0, HOOK_LEDGER: 0 };
      return answer;
    }
    return skewguard.fetch(request, countedEnv(env), ctx);
  },
} satisfies ExportedHandler<Env>;
