/**
 * skewguard's Worker entry: HTTP routes and the cron trigger. Routing only; the work lives in `routes/`.
 */
import { AutoRouter, type IRequest } from "itty-router";
import { clock } from "./routes/clock.ts";
import { errorResponse, HttpError, toErrorResponse } from "./routes/errors.ts";
import { health } from "./routes/health.ts";
import { relay } from "./routes/proxy.ts";

type Args = [Env, ExecutionContext];

const onlyGet = () => {
  throw new HttpError(405, "method_not_allowed", "only GET is allowed here");
};

const router = AutoRouter<IRequest, Args>({
  catch: toErrorResponse,
  missing: () => errorResponse(404, "not_found", "no such route; see README.md for the routes skewguard serves"),
});

router
  .get("/health", (_req, env) => health(env))
  .all("/health", onlyGet)
  .get("/clock", (_req, env) => clock(env))
  .all("/clock", onlyGet)
  .all("/intx/*", (req, env, ctx) => relay("intx", req as unknown as Request, env, ctx))
  .all("/cde/*", (req, env, ctx) => relay("cde", req as unknown as Request, env, ctx));

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
  async scheduled(_controller, _env, _ctx) {},
} satisfies ExportedHandler<Env>;

export { ClockState } from "./adapters/clock-store.ts";
