/**
 * skewguard's Worker entry: HTTP routes and the cron trigger. Routing only; the work lives in `routes/`.
 */
import { AutoRouter, type IRequest } from "itty-router";
import { errorResponse, toErrorResponse } from "./routes/errors.ts";
import { health } from "./routes/health.ts";

type Args = [Env, ExecutionContext];

const router = AutoRouter<IRequest, Args>({
  catch: toErrorResponse,
  missing: () => errorResponse(404, "not_found", "no such route; see README.md for the routes skewguard serves"),
});

router.get("/health", (_req, env) => health(env));

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
  async scheduled(_controller, _env, _ctx) {},
} satisfies ExportedHandler<Env>;

export { ClockState } from "./adapters/clock-store.ts";
