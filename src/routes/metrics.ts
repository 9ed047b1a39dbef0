/**
 * `GET /metrics`: the Prometheus text exposition format (docs/metrics.md), for a token allowed `GET /metrics`.
 * Never cached: every scrape reads the counters, D1 and the Durable Objects anew.
 */
import { collectMetrics } from "../adapters/metrics.ts";
import { EXPOSITION_TYPE, exposition } from "../core/metrics.ts";
import { authenticate } from "./auth.ts";

export async function metrics(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/metrics");
  const body = exposition(await collectMetrics(env));
  return new Response(body, { headers: { "content-type": EXPOSITION_TYPE, "cache-control": "no-store" } });
}
