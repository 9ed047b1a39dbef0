// Bindings that exist only in the tests (vitest.config.ts).
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}

// Vite's lazy glob import (core.test.ts), without the rest of vite/client's ambient declarations.
interface ImportMeta {
  glob(pattern: string): Record<string, () => Promise<unknown>>;
}
