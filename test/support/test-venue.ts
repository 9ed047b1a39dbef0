// A venue that exists only in the tests: what adding a venue takes is this profile (and, for a real venue, its
// simulator routes). Its API lives under /v2/, its orders are POST /v2/order, and it names nothing else: every
// other write it receives is unclassified, so skewguard must treat it as an order (fail closed).
import type { VenueProfile } from "../../src/venues/profile.ts";

export const TEST_VENUE: VenueProfile = {
  name: "tvx",
  title: "TVX",
  defaultBaseUrl: "https://api.tvx.test",
  apiPrefix: "/v2/",
  envPrefix: "TVX_",
  windowSeconds: 5,
  defaultRatePerSecond: undefined,
  probeRead: "/v2/account",
  paths: [
    { method: "POST", path: "/v2/order", kind: "order_create" },
    { method: "DELETE", prefix: "/v2/order", kind: "cancel" },
    { method: "POST", path: "/v2/panic", kind: "kill_switch" },
  ],
};
