/**
 * Bundle size: what `wrangler deploy --dry-run --minify` would upload, raw and gzipped.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export interface BundleResult {
  rawBytes: number;
  gzipBytes: number;
  budgetBytes: number;
}

export const BUNDLE_BUDGET_BYTES = 40 * 1024;

export function benchBundle(): BundleResult {
  const out = mkdtempSync(join(tmpdir(), "skewguard-bundle-"));
  const bin = new URL("../node_modules/.bin", import.meta.url).pathname;
  execFileSync(`${bin}/wrangler`, ["deploy", "--dry-run", "--minify", "--env", "", "--outdir", out], {
    cwd: new URL("..", import.meta.url).pathname,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false" },
    stdio: "ignore",
  });
  const code = readdirSync(out).filter((f) => f.endsWith(".js"));
  const rawBytes = code.reduce((n, f) => n + statSync(join(out, f)).size, 0);
  const gzipBytes = code.reduce((n, f) => n + gzipSync(readFileSync(join(out, f)), { level: 9 }).length, 0);
  return { rawBytes, gzipBytes, budgetBytes: BUNDLE_BUDGET_BYTES };
}
