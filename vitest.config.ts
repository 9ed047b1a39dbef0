import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // Inside workerd, with the Worker's own wrangler.toml and bindings.
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })],
        test: { name: "workers", include: ["test/workers/**/*.test.ts", "test/core/**/*.test.ts"] },
      },
      {
        // Plain Node: the CLI as a process, and the portable core against node:crypto.
        test: { name: "node", environment: "node", include: ["test/node/**/*.test.ts", "test/core/**/*.test.ts"] },
      },
    ],
  },
});
