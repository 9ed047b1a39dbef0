// What `npm start` shows of wrangler's output (issue 28): the Worker's own lines, requests and real errors; not the
// banner, the binding tables, the migration tables, the types prompt meant for the simulator, the `Request.cf`
// warnings (wrangler cannot reach workers.cloudflare.com offline; harmless) or wrangler's own "Ready on" lines,
// which scripts/start.ts replaces with one ready line naming both URLs. Pure, so test/node/start-output.test.ts
// runs it on recorded output.
import { stripVTControlCharacters } from "node:util";

const NOISE: readonly RegExp[] = [
  /^\s*$/,
  /^\s*⛅️ wrangler \d/,
  /^─+$/,
  /^Your Worker has access to the following bindings:/,
  /^Binding\s+Resource\s+Mode$/,
  /^env\.\S+ \(.*\)\s+.*\s(local|remote)$/,
  /^Using (secrets|vars) defined in /,
  /Your types might be out of date/,
  /Unable to fetch the `Request\.cf` object/,
  /^Error: getaddrinfo (ENOTFOUND|EAI_AGAIN) /,
  /^⎔ (Starting local server|Connection status updated|Reloading local server|Shutting down local server)/,
  /^\[wrangler:info\] Ready on /,
];

/** A filter for one output stream: true when a line is shown. A stack under a dropped line is dropped with it. */
export function outputFilter(): (line: string) => boolean {
  let dropped = false;
  return (raw) => {
    const line = stripVTControlCharacters(raw);
    dropped = NOISE.some((noise) => noise.test(line)) || (dropped && /^\s+at /.test(line));
    return !dropped;
  };
}

/** The URL a `wrangler dev` line says it is ready on, if it is that line. */
export function readyUrl(raw: string): string | undefined {
  return /Ready on (http:\/\/\S+)/.exec(stripVTControlCharacters(raw))?.[1];
}

/** One line for `wrangler d1 migrations apply --local`'s successful output (tables of every step otherwise). */
export function migrationSummary(output: string): string {
  const applied = /About to apply (\d+) migration/.exec(output)?.[1];
  if (applied !== undefined) return `local D1: applied ${applied} migrations`;
  return /No migrations to apply/.test(output) ? "local D1: up to date" : "local D1: migrations applied";
}

/** The one line `npm start` prints once both Workers answer. */
export function readyLine(skewguard: string, simulator: string): string {
  return `ready: skewguard on ${skewguard}, the exchange simulator on ${simulator} (Ctrl-C stops both)`;
}
