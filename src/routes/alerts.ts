/**
 * `GET /alerts?limit=20`: the alerts raised recently, newest first, with each sink's state; for the token holders
 * allowed to read them (alert text names deliveries, halts and who set them, job errors). `POST /alerts/test`: one
 * `alert.test` to every sink, or to the one named, and each sink's answer.
 */
import { recentAlerts, sendTestAlert } from "../adapters/alerts.ts";
import { config } from "../runtime.ts";
import { authenticate } from "./auth.ts";
import { HttpError, readBody } from "./http.ts";

export async function alerts(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/alerts");
  const limitText = new URL(request.url).searchParams.get("limit") ?? "20";
  const limit = Number(limitText);
  if (!/^\d{1,3}$/.test(limitText) || limit < 1 || limit > 200) {
    throw new HttpError(400, "bad_limit", "limit must be a whole number from 1 to 200");
  }
  return Response.json({ alerts: await recentAlerts(env.DB, limit) });
}

/** The sink a test alert is for: `{"sink": "name"}` in the body, or `?sink=name`; undefined for every sink. */
async function namedSink(request: Request): Promise<string | undefined> {
  const fromQuery = new URL(request.url).searchParams.get("sink") ?? undefined;
  const body = await readBody(request, 1024);
  if (!body || body.byteLength === 0) return fromQuery;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HttpError(400, "bad_json", 'the body must be JSON: {"sink": "<name>"}, or empty for every sink');
  }
  const sink = typeof parsed === "object" && parsed !== null ? Reflect.get(parsed, "sink") : undefined;
  if (sink !== undefined && typeof sink !== "string")
    throw new HttpError(400, "bad_sink", "sink must be a sink's name");
  return sink ?? fromQuery;
}

export async function testAlert(request: Request, env: Env): Promise<Response> {
  if (request.method !== "POST") {
    throw new HttpError(405, "method_not_allowed", "POST /alerts/test sends a test alert");
  }
  const token = await authenticate(request, env, "POST", "/alerts/test");
  const name = await namedSink(request);
  const { sinks } = config(env).alerts;
  const chosen = name === undefined ? sinks : sinks.filter((sink) => sink.name === name);
  if (sinks.length === 0) {
    throw new HttpError(409, "no_alert_sinks", "ALERTS names no usable sink; see docs/alerts.md and GET /health");
  }
  if (chosen.length === 0) {
    const names = sinks.map((sink) => sink.name).join(", ");
    throw new HttpError(404, "no_such_sink", `no alert sink is named ${JSON.stringify(name)}; the sinks are ${names}`);
  }
  const { id, results } = await sendTestAlert(env, chosen, `token:${token}`);
  const ok = results.every((r) => r.ok);
  return Response.json({ ok, alert: { id, type: "alert.test" }, sinks: results }, { status: ok ? 200 : 502 });
}
