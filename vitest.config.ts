import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const migrations = await readD1Migrations("./migrations");

export default defineConfig({
  test: {
    projects: [
      {
        // Inside workerd, with the Worker's own wrangler.toml and bindings.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts", "test/core/**/*.test.ts"],
          setupFiles: ["test/workers/setup-d1.ts", "test/workers/setup-leaks.ts"],
        },
      },
      {
        // Plain Node: the CLI as a process, and the portable core against node:crypto.
        test: { name: "node", environment: "node", include: ["test/node/**/*.test.ts", "test/core/**/*.test.ts"] },
      },
    ],
  },
});
