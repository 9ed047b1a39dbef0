// The library as a user gets it: `npm pack` ships the built entry, the README with the docs it links (and
// DEVELOPERS.md) and the MIT licence; the tarball installs offline into an empty project (zero dependencies), and
// there it signs, on the system's Node (20 here) as on the pinned Node 24, exactly what node:crypto computes for the
// same prehash.
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const SECRET = "c2tld2d1YXJkLWRldi1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLXVzZSE=";
const BODY = '{"client_order_id":"pack-1","side":"BUY","size":"0.01","note":"café"}';
let project: string;
let files: string[];
let installed: string;

/** The targets of a Markdown text's relative links and images (not in code), without their `#fragment`. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  const targets = [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => (m[1] ?? "").split("#")[0] ?? "");
  return targets.filter((t) => t !== "" && !/^[a-z]+:/i.test(t));
}

beforeAll(() => {
  const out = mkdtempSync(join(tmpdir(), "skewguard-pack-"));
  // --ignore-scripts: `npm test` has built dist/lib already; prepack's rebuild would rewrite it under the tests that
  // import it.
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", out], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: "pipe",
    }),
  ) as { filename: string; files: { path: string }[] }[];
  files = (packed[0]?.files ?? []).map((f) => f.path);
  project = mkdtempSync(join(tmpdir(), "skewguard-user-"));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user", private: true, type: "module" }));
  execFileSync(
    "npm",
    ["install", "--offline", "--no-audit", "--no-fund", join(out, packed[0]?.filename ?? "missing.tgz")],
    { cwd: project, stdio: "pipe" },
  );
  installed = join(project, "node_modules", "skewguard");
  writeFileSync(
    join(project, "sign.js"),
    `import { CoinbaseClient, importHmacKey, secretBytes, signHeaders } from "skewguard";
const key = await importHmacKey(secretBytes(${JSON.stringify(SECRET)}, "base64", "secret"));
const headers = await signHeaders({ apiKey: "k", passphrase: "p", key },
  { method: "POST", url: "https://api.international.coinbase.com/api/v1/orders", body: ${JSON.stringify(BODY)} },
  1800000000);
console.log(JSON.stringify({ headers, client: typeof CoinbaseClient }));`,
  );
}, 120_000);

describe("the packed library", () => {
  it("ships the built entry, its types, the README, the docs it links, the licence and package.json", () => {
    expect(files).toContain("dist/lib/index.js");
    expect(files).toContain("dist/lib/index.d.ts");
    const extra = files.filter((f) => !f.startsWith("dist/lib/") && !f.startsWith("docs/"));
    expect(extra.sort()).toEqual(["DEVELOPERS.md", "LICENSE", "README.md", "package.json"]);
  });

  it("is MIT-licensed, to the skewguard authors, in package.json and LICENSE", () => {
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { license?: string };
    expect(manifest.license).toBe("MIT");
    const licence = readFileSync(join(installed, "LICENSE"), "utf8");
    expect(licence).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} skewguard authors\n/);
  });

  it("every relative link in its README and shipped docs leads to a file it ships", () => {
    const broken: string[] = [];
    for (const doc of files.filter((f) => f.endsWith(".md"))) {
      for (const target of relativeLinks(readFileSync(join(installed, doc), "utf8"))) {
        const path = posix.normalize(posix.join(posix.dirname(doc), target));
        if (!files.includes(path)) broken.push(`${doc} → ${target}`);
      }
    }
    expect(files).toContain("docs/library.md");
    expect(broken).toEqual([]);
  });

  const nodes = [process.execPath, "/usr/bin/node"].filter((bin) => existsSync(bin));
  for (const bin of nodes) {
    it(`installs offline and signs on ${bin}`, () => {
      const out = JSON.parse(execFileSync(bin, ["sign.js"], { cwd: project, encoding: "utf8" })) as {
        headers: Record<string, string>;
        client: string;
      };
      const expected = createHmac("sha256", Buffer.from(SECRET, "base64"))
        .update(`1800000000POST/api/v1/orders${BODY}`)
        .digest("base64");
      expect(out).toEqual({
        headers: {
          "CB-ACCESS-KEY": "k",
          "CB-ACCESS-PASSPHRASE": "p",
          "CB-ACCESS-SIGN": expected,
          "CB-ACCESS-TIMESTAMP": "1800000000",
        },
        client: "function",
      });
    });
  }
});
