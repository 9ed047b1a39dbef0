/**
 * `GET /accounts`: every account per venue, whether it is available or which binding is wrong, and its rate limit.
 * Token-protected: it names accounts, never a key or secret.
 */
import { config } from "../config.ts";
import { authenticate } from "./auth.ts";

export async function accounts(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/accounts");
  const setup = config(env);
  const available = [...setup.accounts.values()].map((a) => ({
    venue: a.profile.name,
    name: a.account,
    available: true,
    rate_limit_per_second: a.pacing?.limit ?? null,
    burst: a.pacing?.burst ?? null,
  }));
  const unavailable = setup.venueProblems.map((p) => ({
    venue: p.venue,
    name: p.account,
    available: false,
    problem: { binding: p.binding, message: p.message },
  }));
  return Response.json({ accounts: [...available, ...unavailable] });
}
