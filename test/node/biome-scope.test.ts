// What Biome (`npm run check`, `npm test`) looks at (issue 28): the project's own folders and root configuration,
// minus what .gitignore ignores. An example saved at the repository's root (say, from docs/relay.md) is not the
// project's code, so it cannot fail the check. The check runs on a scratch copy of biome.json, never on this tree.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const BIOME = join(ROOT, "node_modules", ".bin", "biome");
const BAD = "var   unused=1\n"; // badly formatted, and lint findings: Biome fails on it wherever it checks it

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), "skewguard-biome-"));
  copyFileSync(join(ROOT, "biome.json"), join(dir, "biome.json"));
  spawnSync("git", ["init", "-q"], { cwd: dir });
  writeFileSync(join(dir, ".gitignore"), "src/generated.ts\n");
  mkdirSync(join(dir, "src"));
  writeFileSync(join(dir, "src", "ok.ts"), 'export const ok = "yes";\n');
  return dir;
}

const check = (dir: string) => spawnSync(BIOME, ["check", "."], { cwd: dir, encoding: "utf8" });

describe("Biome's scope", () => {
  it("passes with stray examples at the root and a git-ignored file, which it does not check", () => {
    const dir = project();
    writeFileSync(join(dir, "relay-example.ts"), BAD);
    writeFileSync(join(dir, "example.js"), BAD);
    writeFileSync(join(dir, "order.json"), '{ "side":"BUY" }');
    writeFileSync(join(dir, "src", "generated.ts"), BAD);
    const result = check(dir);
    expect(result.stdout + result.stderr).not.toMatch(/relay-example|example\.js|order\.json|generated/);
    expect(result.status).toBe(0);
  });

  it("still fails on the same file in a project folder", () => {
    const dir = project();
    writeFileSync(join(dir, "src", "bad.ts"), BAD);
    const result = check(dir);
    expect(result.status).not.toBe(0);
    expect(result.stdout + result.stderr).toContain("src/bad.ts");
  });
});
