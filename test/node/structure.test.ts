// The shape the code keeps (issue 25): what a venue is lives in its profile (src/venues/), nothing else in src/
// names a venue or a venue's path in code, and no module in src/ imports itself back through another.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_VENUES } from "../../src/venues/index.ts";

const SRC = resolve("src");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The code without its comments (block, JSDoc and line comments), so a comment's example is not code. */
function uncommented(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

const code = (path: string) => uncommented(readFileSync(path, "utf8"));

/** String literals (quoted or template) whose whole text is a venue's name, or which start with its API prefix. */
function venueLiterals(text: string): string[] {
  const found: string[] = [];
  for (const [, literal = ""] of text.matchAll(/["'`]([^"'`\n]*)["'`]/g)) {
    for (const profile of DEFAULT_VENUES.list) {
      const prefix = profile.apiPrefix.replace(/\/$/, "");
      if (literal === profile.name || literal.startsWith(prefix)) found.push(literal);
    }
  }
  return found;
}

describe("venue knowledge lives in the venue profiles", () => {
  it("no file in src/ outside src/venues/ and the library names a venue or a venue path in code", () => {
    const offenders = files(SRC)
      .filter((path) => !path.startsWith(join(SRC, "venues")) && !path.startsWith(join(SRC, "lib")))
      .flatMap((path) => venueLiterals(code(path)).map((literal) => `${relative(SRC, path)}: ${literal}`));
    expect(offenders).toEqual([]);
  });
  it("the check finds a venue name and a venue path when they are there", () => {
    expect(venueLiterals(code(join(SRC, "venues", "intx.ts")))).toContain("intx");
    expect(venueLiterals(code(join(SRC, "venues", "cde.ts")))).toContain("/rest/kill-switch");
    expect(venueLiterals(uncommented('if (venue === "cde") return `/api/v1/orders`; // "intx"'))).toEqual([
      "cde",
      "/api/v1/orders",
    ]);
  });
});

/** The relative imports of every file in src/, resolved to paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const path of files(SRC)) {
    const imports = [...code(path).matchAll(/from\s+"(\.{1,2}\/[^"]+)"/g)].map(([, spec = ""]) =>
      resolve(dirname(path), spec),
    );
    graph.set(path, imports);
  }
  return graph;
}

/** Every cycle's files, as `a → b → a`. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, "open" | "done">();
  const walk = (node: string, trail: string[]) => {
    state.set(node, "open");
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const loop = [...trail.slice(trail.indexOf(next)), next];
        found.push(loop.map((p) => relative(SRC, p)).join(" → "));
      } else if (!state.has(next)) walk(next, [...trail, next]);
    }
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) walk(node, [node]);
  return found;
}

describe("imports", () => {
  it("src/ has no import cycle", () => {
    expect(cycles(importGraph())).toEqual([]);
  });
  it("the cycle check finds one", () => {
    const graph = new Map([
      ["/s/a.ts", ["/s/b.ts"]],
      ["/s/b.ts", ["/s/c.ts"]],
      ["/s/c.ts", ["/s/a.ts"]],
    ]);
    expect(cycles(graph)).toEqual([
      "../s/a.ts → ../s/b.ts → ../s/c.ts → ../s/a.ts".replaceAll("../s", relative(SRC, "/s")),
    ]);
  });
});

/** Module-level state: a `let`, or an empty Map, WeakMap or Set that code fills in later (a cache). */
function moduleState(text: string): string[] {
  return [
    ...text.matchAll(
      /^(?:export )?(?:let [A-Za-z_$][\w$]*|const [A-Za-z_$][\w$]* *(?::[^=]*)?= *new (?:Weak)?(?:Map|Set)<[^>]*>\(\))/gm,
    ),
  ].map(([line]) => line);
}

describe("one runtime per isolate", () => {
  // The runtime's own table of runtimes, by env; and two in the library, which keeps no account state: the record
  // `signedWithOf` reads for a library user's response, and the scratch buffer the signer reuses (it holds nothing
  // between calls that a later call reads).
  const allowed = new Set([
    "runtime.ts: const runtimes = new WeakMap<object, Runtime>()",
    "lib/client.ts: const signedWith = new WeakMap<Response, SignedWith>()",
    "lib/sign.ts: let scratch",
  ]);
  it("no module in src/ keeps state at module level outside the runtime", () => {
    const state = files(SRC).flatMap((path) =>
      moduleState(code(path)).map((line) => `${relative(SRC, path)}: ${line}`),
    );
    expect(state.filter((line) => !allowed.has(line))).toEqual([]);
    expect(state.filter((line) => allowed.has(line))).toHaveLength(allowed.size);
  });
  it("the check finds a cache, and passes a constant table", () => {
    const text = 'const clocks = new Map<string, VenueClock>();\nlet n = 0;\nconst CODES = new Set<string>(["a"]);';
    expect(moduleState(text)).toEqual(["const clocks = new Map<string, VenueClock>()", "let n"]);
  });
});
