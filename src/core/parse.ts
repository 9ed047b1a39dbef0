/**
 * The small parsing rules every configuration list shares (`HOOKS`, `JOBS`, `RELAY_TOKENS`): records, names,
 * binding names, JSON lists. Pure.
 */

/** A plain JSON object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The keys of a table written out in full (`{ [K in Kind]: … }`): every `Kind`, in the table's order. */
export function keysOf<K extends string>(table: Record<K, unknown>): K[] {
  return Object.keys(table) as K[]; // the table's type lists exactly these keys
}

/** A value that passed its checks, or why it did not. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

/** A route or job name: lower-case letters, digits and dashes, as it appears in a URL. */
export const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A Worker binding name, e.g. `HOOK_TV_PASSPHRASE`. */
export const BINDING = /^[A-Z][A-Z0-9_]{0,62}$/;

/**
 * A JSON array setting: JSON text, or an array set directly in wrangler.toml. Unset is an empty list; anything
 * else is the problem message to report under the binding's name.
 */
export function parseJsonList(value: unknown, binding: string): unknown[] | string {
  if (value === undefined || value === null || value === "") return [];
  let list = value;
  if (typeof value === "string") {
    try {
      list = JSON.parse(value);
    } catch {
      return `${binding} is not valid JSON`;
    }
  }
  return Array.isArray(list) ? list : `${binding} must be a JSON array`;
}

/** A positive whole number from a config entry, else `fallback` with a problem when it was set but wrong. */
export function positiveInteger(value: unknown, fallback: number, what: string, problem: (m: string) => void): number {
  if (value === undefined) return fallback;
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  problem(`${what} must be a positive integer`);
  return fallback;
}

/** One problem with one entry of a list setting, under the entry's name (`#n` when it has none). */
export interface EntryProblem {
  name: string;
  message: string;
}

/**
 * Parses a list setting of named entries (`HOOKS`, `JOBS`): each entry must be an object with a unique `name`;
 * `parseEntry` checks the rest and reports through `problem`. An entry with any problem is left out.
 */
export function parseNamedList<T extends { name: string }>(
  value: unknown,
  binding: string,
  kind: string,
  parseEntry: (raw: Record<string, unknown>, problem: (message: string) => void) => T | undefined,
): { items: T[]; problems: EntryProblem[] } {
  const list = parseJsonList(value, binding);
  if (typeof list === "string") return { items: [], problems: [{ name: binding, message: list }] };
  const items: T[] = [];
  const problems: EntryProblem[] = [];
  list.forEach((raw, i) => {
    const name = isRecord(raw) && typeof raw.name === "string" ? raw.name : `#${i + 1}`;
    const before = problems.length;
    const problem = (message: string) => problems.push({ name, message });
    if (!isRecord(raw)) {
      problem(`a ${kind} must be an object`);
      return;
    }
    if (!NAME.test(name)) problem("name must be lower-case letters, digits and dashes");
    const item = parseEntry(raw, problem);
    if (!item || problems.length > before) return;
    if (items.some((other) => other.name === item.name)) problem("the name is used twice");
    else items.push(item);
  });
  return { items, problems };
}
