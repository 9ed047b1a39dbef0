/**
 * `GET /alerts?limit=20`: the alerts raised recently, newest first, with each sink's state; for the token holders
 * allowed to read them (alert text names deliveries, halts and who set them, job errors).
 */
import { recentAlerts } from "../adapters/alerts.ts";
import { authenticate } from "./auth.ts";
import { HttpError } from "./http.ts";

export async function alerts(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/alerts");
  const limitText = new URL(request.url).searchParams.get("limit") ?? "20";
  const limit = Number(limitText);
  if (!/^\d{1,3}$/.test(limitText) || limit < 1 || limit > 200) {
    throw new HttpError(400, "bad_limit", "limit must be a whole number from 1 to 200");
  }
  return Response.json({ alerts: await recentAlerts(env.DB, limit) });
}
