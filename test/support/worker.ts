// Calling the Worker's fetch handler from a workerd test, as a client would: the request goes to
// https://relay.test<path>, with `Authorization: Bearer <token>` when a token is given, and every waitUntil the
// request started has finished when the answer is returned.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import worker from "../../src/index.ts";

export async function fetchWorker(env: Env, path: string, init: RequestInit = {}, token?: string): Promise<Response> {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  const response = await worker.fetch(new Request(`https://relay.test${path}`, { ...init, headers }), env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** Runs the Worker's scheduled handler for one cron trigger, and waits for every waitUntil it started. */
export async function runCron(env: Env, cron = "*/5 * * * *", scheduledTime = Date.now()): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron, scheduledTime }), env, ctx);
  await waitOnExecutionContext(ctx);
}
