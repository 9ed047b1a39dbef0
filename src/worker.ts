/**
 * The Worker's handlers for a list of venues: the fetch (HTTP routes, one relay route per venue profile), scheduled
 * (cron jobs, held-back alerts) and queue (durable deliveries and alerts) handlers. Wiring only; the work lives in
 * `routes/` and `adapters/`. src/index.ts builds it with the venues skewguard serves.
 */
import { AutoRouter, type IRequest } from "itty-router";
import {
  type AlertMessage,
  consumeAlerts,
  flushHeldAlerts,
  isAlertMessage,
  raiseConfigProblems,
  raiseLater,
} from "./adapters/alerts.ts";
import { consumeDeliveries, sweepStuckRedrives } from "./adapters/deliveries.ts";
import { runScheduled } from "./adapters/jobs.ts";
import { log } from "./adapters/log.ts";
import { events } from "./core/alerts.ts";
import type { DeliveryMessage } from "./core/deliveries.ts";
import { type RouteNames, routeTemplate } from "./core/metrics.ts";
import { queueKind } from "./core/queues.ts";
import { accounts, haltAccount, haltAll } from "./routes/accounts.ts";
import { alerts, testAlert } from "./routes/alerts.ts";
import { clientKey, limitInbound } from "./routes/auth.ts";
import { clock } from "./routes/clock.ts";
import { consoleAction, consoleGet, consoleLogin } from "./routes/console.ts";
import { deliveries, delivery, retryDelivery } from "./routes/deliveries.ts";
import { feedUpgrade } from "./routes/feed.ts";
import { health } from "./routes/health.ts";
import { hook } from "./routes/hooks.ts";
import { errorResponse, HttpError, toErrorResponse } from "./routes/http.ts";
import { jobs, runs } from "./routes/jobs.ts";
import { metrics } from "./routes/metrics.ts";
import { orders } from "./routes/orders.ts";
import { relay } from "./routes/relay.ts";
import { config, runtime } from "./runtime.ts";
import type { Venues } from "./venues/index.ts";

type Args = [Env, ExecutionContext];

const onlyGet = () => {
  throw new HttpError(405, "method_not_allowed", "only GET is allowed here");
};

function router(venues: Venues) {
  const routes = AutoRouter<IRequest, Args>({
    before: [(req, env) => limitInbound(env, clientKey(req))],
    catch: toErrorResponse,
    missing: () => errorResponse(404, "not_found", "no such route; see README.md for the routes skewguard serves"),
  });
  routes
    .get("/health", (req, env) => health(req, env))
    .all("/health", onlyGet)
    .get("/clock", (_req, env) => clock(env))
    .all("/clock", onlyGet);
  // The market-data feed's upgrades, before the relay's catch-all, for a venue with a feed only.
  for (const profile of venues.list.filter((p) => p.marketData)) {
    routes
      .get(`/${profile.name}/ws`, (req, env) => feedUpgrade(profile, "default", req, env))
      .get(`/${profile.name}/:account/ws`, (req, env) => feedUpgrade(profile, req.params.account ?? "", req, env));
  }
  for (const profile of venues.list) routes.all(`/${profile.name}/*`, (req, env, ctx) => relay(profile, req, env, ctx));
  return routes
    .all("/hooks/:name", (req, env, ctx) => hook(req.params.name ?? "", req, env, ctx))
    .get("/accounts", (req, env) => accounts(req, env))
    .all("/accounts/:venue/:account/halt", (req, env, ctx) =>
      haltAccount(req.params.venue ?? "", req.params.account ?? "", req, env, ctx),
    )
    .all("/halt", (req, env, ctx) => haltAll(req, env, ctx))
    .get("/jobs", (req, env) => jobs(req, env))
    .get("/jobs/:name/runs", (req, env) => runs(req.params.name ?? "", req, env))
    .get("/console", (req, env) => consoleGet(req, env))
    .post("/console/login", (req, env) => consoleLogin(req, env))
    .post("/console/:action", (req, env, ctx) => consoleAction(req.params.action ?? "", req, env, ctx))
    .all("/console", () => {
      throw new HttpError(405, "method_not_allowed", "GET /console shows the console");
    })
    .get("/alerts", (req, env) => alerts(req, env))
    .all("/alerts/test", (req, env) => testAlert(req, env))
    .get("/deliveries", (req, env) => deliveries(req, env))
    .get("/deliveries/:id", (req, env) => delivery(req.params.id ?? "", req, env))
    .all("/deliveries/:id/retry", (req, env, ctx) => retryDelivery(req.params.id ?? "", req, env, ctx))
    .get("/orders", (req, env) => orders(req, env))
    .all("/orders", onlyGet)
    .get("/metrics", (req, env) => metrics(req, env))
    .all("/metrics", onlyGet);
}

/**
 * Each batch goes to its queue's consumer, by the queue's name (core/queues.ts). On a deliveries queue, an alert
 * message is one queued there before alerts had a queue of their own (ALERTS_QUEUE): it is still posted. Anything
 * else has no consumer (a queue of another name, or a delivery on an alerts queue) and is never acked: see
 * `unroutable`.
 */
async function queue(batch: MessageBatch<DeliveryMessage | AlertMessage>, env: Env, ctx: ExecutionContext) {
  raiseConfigProblems(env, ctx);
  const kind = queueKind(batch.queue);
  const alerts = batch.messages.filter((m): m is Message<AlertMessage> => isAlertMessage(m.body));
  const deliveries = batch.messages.filter((m): m is Message<DeliveryMessage> => !isAlertMessage(m.body));
  if (kind === "deliveries") {
    await Promise.all([consumeDeliveries(deliveries, env, ctx), consumeAlerts(alerts, env)]);
  } else if (kind === "alerts") {
    unroutable(batch.queue, deliveries, env, ctx);
    await consumeAlerts(alerts, env);
  } else unroutable(batch.queue, batch.messages, env, ctx);
}

/**
 * Messages no consumer takes: each is retried in a minute (until the queue's `max_retries`), and the batch logs
 * `queue_unroutable` and raises `config.problem` (once per queue and quiet period), so the configuration can be
 * fixed before the queue gives the messages up. A queue's name must end in `-deliveries` or `-alerts`.
 */
function unroutable(name: string, messages: readonly Message[], env: Env, ctx: ExecutionContext): void {
  if (messages.length === 0) return;
  log("error", { event: "queue_unroutable", queue: name, messages: messages.length });
  const why = "no consumer takes these messages: a queue's name must end in -deliveries or -alerts";
  raiseLater(env, ctx, events.configProblem("queues.consumers", name, why));
  for (const msg of messages) msg.retry({ delaySeconds: 60 });
}

/** The first segments of skewguard's own routes: no venue profile may take one of them as its name. */
export const OWN_ROUTES: ReadonlySet<string> = new Set([
  "health",
  "clock",
  "hooks",
  "accounts",
  "halt",
  "jobs",
  "console",
  "alerts",
  "deliveries",
  "orders",
  "metrics",
]);

/** The Worker for `venues`: its configuration (read once per isolate) serves exactly those venues. */
export function createWorker(venues: Venues) {
  const taken = venues.names.filter((name) => OWN_ROUTES.has(name));
  if (taken.length > 0) throw new Error(`venue name ${taken.join(", ")} is one of skewguard's own routes`);
  const routes = router(venues);
  const names: RouteNames = {
    venues: new Set(venues.names),
    feeds: new Set(venues.list.filter((p) => p.marketData).map((p) => p.name)),
  };

  /** Every response carries a request id, and every request leaves one JSON log line with no secrets in it. */
  async function fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const id = crypto.randomUUID();
    const started = Date.now();
    config(env, venues);
    raiseConfigProblems(env, ctx);
    let response: Response = await routes.fetch(request, env, ctx);
    if (response.webSocket == null) response = new Response(response.body, response);
    response.headers.set("x-request-id", id);
    const route = new URL(request.url).pathname;
    runtime(env).metrics.requests.inc(routeTemplate(route, names), String(response.status));
    log(response.status >= 500 ? "error" : "info", {
      event: "request",
      id,
      method: request.method,
      route: route.length > 200 ? `${route.slice(0, 200)}…` : route,
      ...venues.of(route),
      status: response.status,
      attempts: Number(response.headers.get("x-skewguard-attempts")) || undefined,
      offset_ms: Number(response.headers.get("x-skewguard-offset-ms")) || undefined,
      uncertainty_ms: Number(response.headers.get("x-skewguard-uncertainty-ms")) || undefined,
      ms: Date.now() - started,
    });
    return response;
  }

  return {
    fetch,
    scheduled: (controller, env, ctx) => {
      config(env, venues);
      raiseConfigProblems(env, ctx);
      ctx.waitUntil(flushHeldAlerts(env));
      ctx.waitUntil(sweepStuckRedrives(env, ctx));
      return runScheduled(controller, env, ctx);
    },
    queue: (batch, env, ctx) => {
      config(env, venues);
      return queue(batch, env, ctx);
    },
  } satisfies ExportedHandler<Env, DeliveryMessage | AlertMessage>;
}
