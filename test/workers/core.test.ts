// test/core's pure tests, run inside workerd as well (its WebCrypto, TextEncoder, Intl and Date), from this one file:
// every workerd test file pays a fresh workerd start-up (0.5 to 1.5 s, more than all the core tests take), so the
// eleven files share one. Each keeps its own describe block, named by its path. The node project runs them file by file.
import { describe } from "vitest";

const files = import.meta.glob("../core/*.test.ts");

for (const [path, load] of Object.entries(files)) {
  describe(path.replace(/^\.\.\//, "test/"), async () => {
    await load();
  });
}
