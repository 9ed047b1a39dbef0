/**
 * Relay tokens: who may call skewguard, and for which `METHOD /path-glob` patterns.
 * Parsed from the `RELAY_TOKENS` secret, e.g.
 * `[{"name":"bot-1","token":"…","allow":["GET /cde/rest/*","POST /intx/api/v1/orders"]}]`.
 */

import { ConfigError } from "../lib/errors.ts";
import { digestsEqual, sha256 } from "./digest.ts";

/** One allow-list entry. `method` is upper case or `*`; `*` in the path matches any run of characters. */
export interface AllowRule {
  method: string;
  path: RegExp;
  source: string;
}

/** A configured token. Matching compares SHA-256 digests (see `TokenTable`). */
export interface TokenEntry {
  name: string;
  token: string;
  allow: AllowRule[];
}

const RULE = /^(\*|[A-Z]+) (\/[!-~]*)$/;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Compiles `METHOD /path-glob`. Only `*` is special; everything else matches literally. */
export function parseRule(source: string): AllowRule {
  const m = RULE.exec(source);
  if (!m) throw new Error(`allow rule ${JSON.stringify(source)} must look like "GET /cde/rest/*" or "* /intx/*"`);
  const glob = m[2] as string;
  const pattern = glob
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return { method: m[1] as string, path: new RegExp(`^${pattern}$`), source };
}

/** True when `method path` is allowed by any of `rules`. */
export function allows(rules: readonly AllowRule[], method: string, path: string): boolean {
  return rules.some((r) => (r.method === "*" || r.method === method) && r.path.test(path));
}

/** Parses `RELAY_TOKENS`. Throws ConfigError naming the binding and the entry at fault (never a token value). */
export function parseTokens(value: unknown): TokenEntry[] {
  const binding = "RELAY_TOKENS";
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(binding, "is not set; every authenticated route refuses until it is (see README.md)");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new ConfigError(binding, "is not valid JSON; expected an array of {name, token, allow}");
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError(binding, "must be a non-empty JSON array");
  const seen = new Set<string>();
  return raw.map((entry: unknown, i): TokenEntry => {
    const where = `entry ${i}`;
    if (typeof entry !== "object" || entry === null) throw new ConfigError(binding, `${where} is not an object`);
    const { name, token, allow }: Record<string, unknown> = { ...entry };
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new ConfigError(binding, `${where}: "name" must be 1-64 letters, digits, "_", "." or "-"`);
    }
    if (typeof token !== "string" || token.length < 16 || !/^[!-~]+$/.test(token)) {
      throw new ConfigError(binding, `${where} (${name}): "token" must be at least 16 printable characters`);
    }
    if (seen.has(token)) throw new ConfigError(binding, `${where} (${name}): the same token appears twice`);
    seen.add(token);
    if (!Array.isArray(allow) || allow.length === 0 || !allow.every((a) => typeof a === "string")) {
      throw new ConfigError(binding, `${where} (${name}): "allow" must be a non-empty array of "METHOD /path-glob"`);
    }
    try {
      return { name, token, allow: allow.map(parseRule) };
    } catch (err) {
      throw new ConfigError(binding, `${where} (${name}): ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

/**
 * The configured tokens, matched by SHA-256 digest in constant time against every entry, so timing says nothing
 * about which token (or which byte) differed. Digests are computed once, on first use.
 */
export class TokenTable {
  readonly entries: readonly TokenEntry[];
  #digests: Promise<Uint8Array[]> | undefined;
  constructor(entries: readonly TokenEntry[]) {
    this.entries = entries;
  }

  /** The entry whose token is `presented`, or undefined. */
  async match(presented: string): Promise<TokenEntry | undefined> {
    this.#digests ??= Promise.all(this.entries.map((entry) => sha256(entry.token)));
    const [given, digests] = await Promise.all([sha256(presented), this.#digests]);
    let match: TokenEntry | undefined;
    digests.forEach((digest, i) => {
      if (digestsEqual(given, digest) && !match) match = this.entries[i];
    });
    return match;
  }
}

/** Whether `rule` matches at least one path that starts with `prefix` (any method). */
export function reachesPrefix(rule: AllowRule, prefix: string): boolean {
  const glob = rule.source.slice(rule.source.indexOf(" ") + 1);
  const star = glob.indexOf("*");
  // Without a `*`, the rule is one path (the prefix alone is no venue path); with one, its literal head must agree with the prefix as far as both go,
  // and the first `*` can then take the rest of the prefix (and the rule's tail follows it).
  if (star === -1) return glob.startsWith(prefix) && glob.length > prefix.length;
  const head = glob.slice(0, star);
  return head.startsWith(prefix) || prefix.startsWith(head);
}

/** An account as the relay addresses it: `/<venue>/<account><apiPrefix>…`, and the default also `/<venue><apiPrefix>…`. */
export interface RelayAccount {
  venue: string;
  account: string;
  apiPrefix: string;
}

/**
 * The accounts (by `venue/account`) that `rules` can reach through the relay: those with a rule that matches some
 * relay path of theirs. `* /intx/alpha/*` reaches intx/alpha only; `* /intx/*` every INTX account; `* /intx/a*`
 * also the default account (`/intx/api/v1/…`) and any account whose name starts with `a`.
 */
export function reachableAccounts(rules: readonly AllowRule[], accounts: readonly RelayAccount[]): Set<string> {
  const reached = new Set<string>();
  for (const { venue, account, apiPrefix } of accounts) {
    const prefixes = [`/${venue}/${account}${apiPrefix}`];
    if (account === "default") prefixes.push(`/${venue}${apiPrefix}`);
    if (rules.some((rule) => prefixes.some((prefix) => reachesPrefix(rule, prefix))))
      reached.add(`${venue}/${account}`);
  }
  return reached;
}
