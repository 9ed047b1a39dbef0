// Optional settings, merged into the `Env` that `wrangler types` generates from wrangler.toml and
// .dev.vars.example: each is read (and checked) by `config(env)` in src/config.ts.
declare namespace Cloudflare {
  interface Env {
    INTX_SECRET_ENCODING?: string;
    CDE_SECRET_ENCODING?: string;
    INTX_WINDOW_SECONDS?: string;
    CDE_WINDOW_SECONDS?: string;
    INTX_RATE_LIMIT_PER_SECOND?: string;
    CDE_RATE_LIMIT_PER_SECOND?: string;
    INTX_RATE_BURST?: string;
    CDE_RATE_BURST?: string;
    CLOCK_SYNC?: string;
    RUNS_RETENTION_DAYS?: string;
    ALERTS?: string;
    ALERTS_QUIET_SECONDS?: string;
    CONSOLE_SESSION_SECRET?: string;
  }
}
