/**
 * Exact decimals for order guards: sizes, prices and limits are compared as written, never as floats, so `0.1`
 * equals `0.10000000` and `0.30000000000000004` is over `0.3`. Only plain non-negative decimals are accepted:
 * digits with at most one point inside (`0.5`, `12`, `0.10`); no sign, exponent, hex, spaces or empty parts, and at
 * most 18 significant digits. Pure.
 */

/** `units · 10^-scale`. */
export interface Decimal {
  readonly units: bigint;
  readonly scale: number;
}

const PLAIN = /^(\d+)(?:\.(\d+))?$/;
export const MAX_SIGNIFICANT_DIGITS = 18;
/** Longer strings are refused before any work, whatever their digits (leading or trailing zeros included). */
const MAX_LENGTH = 64;

/** The decimal `text` stands for, or undefined when it is not a plain decimal (see above). */
export function parseDecimal(text: string): Decimal | undefined {
  if (text.length > MAX_LENGTH) return undefined;
  const m = PLAIN.exec(text);
  if (!m) return undefined;
  const fraction = (m[2] ?? "").replace(/0+$/, "");
  const digits = `${m[1]}${fraction}`.replace(/^0+/, "");
  if (digits.length > MAX_SIGNIFICANT_DIGITS) return undefined;
  return { units: BigInt(digits === "" ? "0" : digits), scale: fraction.length };
}

/** −1, 0 or 1 as `a` is below, equal to or above `b`. */
export function compareDecimal(a: Decimal, b: Decimal): -1 | 0 | 1 {
  const scale = Math.max(a.scale, b.scale);
  const x = a.units * 10n ** BigInt(scale - a.scale);
  const y = b.units * 10n ** BigInt(scale - b.scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `a · b`, exactly. */
export function multiplyDecimal(a: Decimal, b: Decimal): Decimal {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

/** The shortest plain form: `0.10000000` → `0.1`, `12.0` → `12`. */
export function formatDecimal({ units, scale }: Decimal): string {
  if (scale === 0) return units.toString();
  const digits = units.toString().padStart(scale + 1, "0");
  const fraction = digits.slice(-scale).replace(/0+$/, "");
  const whole = digits.slice(0, -scale);
  return fraction === "" ? whole : `${whole}.${fraction}`;
}
