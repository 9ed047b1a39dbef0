// Optional settings, merged into the `Env` that `wrangler types` generates from wrangler.toml and
// .dev.vars.example: each is read (and checked) by `config(env)` in src/config.ts. A venue's own settings
// (`<envPrefix>WINDOW_SECONDS`, `…SECRET_ENCODING`, `…RATE_LIMIT_PER_SECOND`, `…RATE_BURST`) are read by name from
// its profile's prefix (src/core/venue-config.ts), so they are not listed here.
declare namespace Cloudflare {
  interface Env {
    CLOCK_SYNC?: string;
    RUNS_RETENTION_DAYS?: string;
    ALERTS?: string;
    ALERTS_QUIET_SECONDS?: string;
    CONSOLE_SESSION_SECRET?: string;
    ORDER_LEDGER?: string;
  }
}
