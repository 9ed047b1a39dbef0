/**
 * `GET /deliveries/<id>`: where a queued webhook is, for the token holders allowed to ask. Its response is the
 * venue's answer as recorded; the signature and the signed prehash were never stored.
 */
import { readDelivery } from "../adapters/deliveries.ts";
import { authenticate } from "./auth.ts";
import { HttpError } from "./http.ts";

export async function delivery(id: string, request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", `/deliveries/${id}`);
  if (!/^sg-[0-9a-f]{29}$/.test(id)) throw new HttpError(404, "not_found", "no such delivery");
  const row = await readDelivery(env, id);
  if (!row) throw new HttpError(404, "not_found", "no such delivery");
  return Response.json(row);
}
