// Runs before every workerd test file: applies the D1 migrations (idempotent), as `wrangler d1 migrations apply`
// does for local dev, so each file sees the real schema.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
