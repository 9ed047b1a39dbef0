/**
 * Queued webhooks, for the token holders allowed to ask: `GET /deliveries/<id>` (where one is, with its history),
 * `GET /deliveries?state=dead&limit=50` (recent ones, e.g. the dead letters), and `POST /deliveries/<id>/retry`
 * (re-drive a dead one; `?force=true` for one that is not safe to send twice). A delivery's response is the venue's answer as recorded; the signature and the signed
 * prehash were never stored.
 */
import { DeliveryQueueError, redrive } from "../adapters/deliveries.ts";
import { type DeliveryView, listDeliveries, readDelivery } from "../adapters/delivery-store.ts";
import { DELIVERY_ID } from "../core/hooks.ts";
import { authenticate } from "./auth.ts";
import { HttpError } from "./http.ts";

const STATES: readonly DeliveryView["state"][] = ["queued", "delivered", "dead"];

export async function delivery(id: string, request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", `/deliveries/${id}`);
  if (!DELIVERY_ID.test(id)) throw new HttpError(404, "not_found", "no such delivery");
  const row = await readDelivery(env, id);
  if (!row) throw new HttpError(404, "not_found", "no such delivery");
  return Response.json(row);
}

/** `GET /deliveries?state=dead&limit=50`: newest first; `limit` 1-200, default 50. */
export async function deliveries(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/deliveries");
  const params = new URL(request.url).searchParams;
  const wanted = params.get("state");
  const state = STATES.find((s) => s === wanted);
  if (wanted !== null && state === undefined) {
    throw new HttpError(400, "bad_state", `state must be one of ${STATES.join(", ")}`);
  }
  const limitText = params.get("limit") ?? "50";
  const limit = Number(limitText);
  if (!/^\d{1,3}$/.test(limitText) || limit < 1 || limit > 200) {
    throw new HttpError(400, "bad_limit", "limit must be a whole number from 1 to 200");
  }
  const rows = await listDeliveries(env, state, limit);
  return Response.json({ deliveries: rows });
}

/** `POST /deliveries/<id>/retry`: 202 with where to follow it; 409 unless the delivery is dead. */
export async function retryDelivery(id: string, request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  if (request.method !== "POST") throw new HttpError(405, "method_not_allowed", "re-drive with POST");
  const token = await authenticate(request, env, "POST", `/deliveries/${id}/retry`);
  if (!DELIVERY_ID.test(id)) throw new HttpError(404, "not_found", "no such delivery");
  let outcome: Awaited<ReturnType<typeof redrive>>;
  try {
    const force = new URL(request.url).searchParams.get("force") === "true";
    // Kept alive past a client that hangs up: between the claim and the queue it must not stop halfway.
    const work = redrive(env, id, `token:${token}`, Date.now(), force);
    ctx.waitUntil(work.catch(() => undefined));
    outcome = await work;
  } catch (err) {
    if (err instanceof DeliveryQueueError) throw new HttpError(503, "queue_unavailable", err.message);
    throw err;
  }
  if (outcome === "not_found") throw new HttpError(404, "not_found", "no such delivery");
  if (outcome === "unsafe") {
    throw new HttpError(
      409,
      "unsafe_to_resend",
      "this delivery may have reached the venue and has no client_order_id: sending it again could act twice; add ?force=true to re-drive it anyway",
    );
  }
  if (outcome === "not_dead") {
    throw new HttpError(409, "not_dead", "only a dead-lettered delivery can be re-driven; see GET /deliveries/<id>");
  }
  return Response.json({ delivery_id: id, state: "queued", status_url: `/deliveries/${id}` }, { status: 202 });
}
