/**
 * Coinbase Derivatives Exchange (docs/protocol.md, "CDE"): REST under `/rest/`, a 5 s timestamp window, no published
 * per-key rate. Orders go over FIX/SBE only, so no REST call is an order; the kill-switch and unlock set a state.
 */
import { isObject, type TemplateField, templateValue, UUID_TEXT, type VenueProfile } from "./profile.ts";

const KILL_SWITCH = "/rest/kill-switch";
const UNLOCK = "/rest/unlock-trading";
const UUIDS = ["fcm_uuid", "firm_uuid", "trading_user_uuid"] as const;

/**
 * A kill-switch carries `only_cancel_no_trading_lock` (a boolean) and exactly one of `fcm_uuid`, `firm_uuid`,
 * `trading_user_uuid`; an unlock exactly one uuid (CDE's reference: "Must only include one uuid").
 */
function templateProblems(method: string, path: string, body: unknown, field: TemplateField): string[] {
  const kill = path === KILL_SWITCH;
  if (method !== "POST" || (!kill && path !== UNLOCK)) return [];
  const what = kill ? "a CDE kill-switch" : "a CDE unlock-trading";
  if (!isObject(body)) return [`request.body must be an object: ${what} names exactly one of ${UUIDS.join(", ")}`];
  const problems: string[] = [];
  const sure = (name: string, type: string, literal: (v: unknown) => boolean): boolean => {
    const value = templateValue(body[name], field);
    if ("literal" in value) return literal(value.literal);
    return "placeholder" in value && value.spec?.type === type && !value.spec.optional;
  };
  if (kill && !sure("only_cancel_no_trading_lock", "boolean", (v) => typeof v === "boolean")) {
    problems.push(
      `request.body.only_cancel_no_trading_lock is required by ${what}: true or false, or a required boolean field`,
    );
  }
  const named = UUIDS.filter((name) => name in body);
  const [name] = named;
  if (named.length !== 1 || name === undefined) {
    problems.push(`request.body must name exactly one of ${UUIDS.join(", ")} for ${what} (it names ${named.length})`);
  } else if (!sure(name, "uuid", (v) => typeof v === "string" && UUID_TEXT.test(v))) {
    problems.push(`request.body.${name} must be a lowercase UUID, or a required uuid field`);
  }
  return problems;
}

export const cde: VenueProfile = {
  name: "cde",
  title: "CDE",
  defaultBaseUrl: "https://api.exchange.fairx.net",
  apiPrefix: "/rest/",
  envPrefix: "CDE_",
  windowSeconds: 5,
  defaultRatePerSecond: undefined,
  probeRead: "/rest/v2/positions",
  paths: [
    { method: "POST", path: KILL_SWITCH, kind: "kill_switch" },
    { method: "POST", path: UNLOCK, kind: "state" },
    // A query with its filters in a JSON body.
    { method: "POST", path: "/rest/instruments", kind: "read" },
    // CDE takes no orders over REST: every other write is a plain write.
    { method: "*", prefix: "/rest", kind: "write" },
  ],
  templateProblems,
};
