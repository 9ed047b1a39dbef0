// The cron triggers the job parser accepts must be exactly wrangler.toml's [triggers] crons, or a job would be
// accepted that never runs (or refused though it would).
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { TRIGGERS } from "../../src/core/jobs.ts";

it("TRIGGERS matches wrangler.toml [triggers] crons", () => {
  const toml = readFileSync("wrangler.toml", "utf8");
  const line = /^\[triggers\]\s*\ncrons = (\[.*\])$/m.exec(toml)?.[1];
  expect(JSON.parse(line ?? "null")).toEqual([...TRIGGERS]);
});
