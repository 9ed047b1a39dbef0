/**
 * The library entry's size, as a user's bundler would ship it: `src/lib/index.ts` bundled and minified by esbuild,
 * raw and gzip, next to aws4fetch (the small WebCrypto signer people hold up as the form) bundled the same way.
 */
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

export interface SizeResult {
  name: string;
  rawBytes: number;
  gzipBytes: number;
}

async function size(name: string, entry: string): Promise<SizeResult> {
  const out = await build({
    // An entry file, or `import … from` text (what a user's code takes from the entry: the rest is tree-shaken).
    ...(entry.startsWith("import ")
      ? { stdin: { contents: `${entry}; export { x };`, resolveDir: process.cwd(), loader: "ts" as const } }
      : { entryPoints: [entry] }),
    bundle: true,
    minify: true,
    format: "esm",
    platform: "neutral",
    write: false,
    logLevel: "silent",
  });
  const code = out.outputFiles[0]?.contents ?? new Uint8Array(0);
  return { name, rawBytes: code.byteLength, gzipBytes: gzipSync(code, { level: 9 }).byteLength };
}

export async function benchLibrarySize(): Promise<SizeResult[]> {
  const root = new URL("..", import.meta.url).pathname;
  const lib = `${root}src/lib/index.ts`;
  return [
    await size("skewguard, the whole entry", lib),
    await size("skewguard, CoinbaseClient only", `import { CoinbaseClient as x } from "${lib}"`),
    await size("skewguard, signHeaders only", `import { signHeaders as x } from "${lib}"`),
    await size("aws4fetch", `${root}node_modules/aws4fetch/dist/aws4fetch.esm.mjs`),
  ];
}
