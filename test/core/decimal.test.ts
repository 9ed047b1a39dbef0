// Exact decimals for order guards: only plain non-negative decimals with at most 18 significant digits (and at most
// 64 characters) are accepted, and comparison, multiplication and formatting are exact. big.js is the oracle.
import Big from "big.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareDecimal,
  type Decimal,
  formatDecimal,
  MAX_SIGNIFICANT_DIGITS,
  multiplyDecimal,
  parseDecimal,
} from "../../src/core/decimal.ts";

/** parseDecimal, for a string the test knows is accepted. */
function dec(text: string): Decimal {
  const parsed = parseDecimal(text);
  if (!parsed) throw new Error(`test setup: ${JSON.stringify(text)} was refused`);
  return parsed;
}

const DIGITS = "0123456789";

/**
 * The acceptance rule, written without the module's regex: one or two non-empty runs of ASCII digits joined by a
 * single point, at most 64 characters, and at most 18 significant digits (leading zeros and the fraction's trailing
 * zeros do not count; the integer part's trailing zeros do).
 */
function shouldAccept(s: string): boolean {
  if (s.length > 64) return false;
  const parts = s.split(".");
  if (parts.length > 2) return false;
  for (const part of parts) {
    if (part.length === 0) return false;
    for (const c of part) if (!DIGITS.includes(c)) return false;
  }
  const whole = parts[0] ?? "";
  let fraction = parts[1] ?? "";
  while (fraction.endsWith("0")) fraction = fraction.slice(0, -1);
  const all = whole + fraction;
  let first = 0;
  while (first < all.length && all[first] === "0") first++;
  return all.length - first <= 18;
}

const digitString = (minLength: number, maxLength: number) =>
  fc.array(fc.constantFrom(...DIGITS), { minLength, maxLength }).map((cs) => cs.join(""));

/** A plain decimal: 1–9 integer digits and an optional 1–9 digit fraction (so at most 18 significant digits). */
const plainDecimal = fc
  .tuple(digitString(1, 9), fc.option(digitString(1, 9), { nil: undefined }))
  .map(([whole, fraction]) => (fraction === undefined ? whole : `${whole}.${fraction}`));

describe("parseDecimal", () => {
  it("refuses hostile and malformed strings", () => {
    const refused = [
      "1e3",
      "0x10",
      "-1",
      "NaN",
      " 1",
      "1 ",
      "1.0.0",
      "",
      ".5",
      "5.",
      "+1",
      "1,5",
      "Infinity",
      "١", // ARABIC-INDIC DIGIT ONE
      "0.5\n",
      "1234567890123456789", // 19 significant digits
      `1${"0".repeat(18)}`, // 19 significant digits
      "0".repeat(65), // over 64 characters, whatever the digits
    ];
    for (const text of refused) expect(parseDecimal(text), JSON.stringify(text)).toBeUndefined();
  });

  it("accepts plain decimals up to 18 significant digits", () => {
    // Each as units · 10^-scale, worked out by hand from the digits.
    const accepted: [string, bigint, number][] = [
      ["0.1", 1n, 1],
      ["0.10000000", 1n, 1],
      ["12", 12n, 0],
      ["0", 0n, 0],
      ["007.50", 75n, 1],
      ["123456789012345678", 123456789012345678n, 0],
      ["0.000000000000000001", 1n, 18],
    ];
    for (const [text, units, scale] of accepted) expect(parseDecimal(text), text).toEqual({ units, scale });
    expect(MAX_SIGNIFICANT_DIGITS).toBe(18);
  });

  it("compares as written, not as floats", () => {
    expect(compareDecimal(dec("0.10000000"), dec("0.1"))).toBe(0);
    expect(compareDecimal(dec("0.1"), dec("0.10000000"))).toBe(0);
    expect(compareDecimal(dec("0.30000000000000004"), dec("0.3"))).toBe(1);
    expect(compareDecimal(dec("0.3"), dec("0.30000000000000004"))).toBe(-1);
    expect(compareDecimal(dec("007.50"), dec("7.5"))).toBe(0);
    expect(compareDecimal(dec("0.000000000000000001"), dec("0"))).toBe(1);
  });

  it("formats in the shortest plain form", () => {
    expect(formatDecimal(dec("0.10000000"))).toBe("0.1");
    expect(formatDecimal(dec("12.0"))).toBe("12");
    expect(formatDecimal(dec("007.50"))).toBe("7.5");
    expect(formatDecimal(dec("0"))).toBe("0");
  });
});

describe("decimal properties (big.js as the oracle)", () => {
  it("property: compareDecimal agrees with Big#cmp", () => {
    fc.assert(
      fc.property(plainDecimal, plainDecimal, (a, b) => {
        expect(compareDecimal(dec(a), dec(b))).toBe(new Big(a).cmp(new Big(b)));
        expect(compareDecimal(dec(a), dec(a))).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it("property: multiplyDecimal agrees with Big#times", () => {
    fc.assert(
      fc.property(plainDecimal, plainDecimal, (a, b) => {
        const product = formatDecimal(multiplyDecimal(dec(a), dec(b)));
        expect(new Big(product).eq(new Big(a).times(b)), `${a} × ${b} = ${product}`).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("property: formatDecimal gives the value in its shortest plain form", () => {
    fc.assert(
      fc.property(plainDecimal, (a) => {
        expect(formatDecimal(dec(a))).toBe(new Big(a).toFixed());
      }),
      { numRuns: 1000 },
    );
  });

  it("property: parseDecimal accepts exactly the plain decimals of ≤ 18 significant digits and ≤ 64 characters", () => {
    const anyText = fc.array(fc.constantFrom(..."0123456789.-+e x"), { maxLength: 24 }).map((cs) => cs.join(""));
    const mostlyDigits = fc
      .array(fc.oneof({ arbitrary: fc.constantFrom(...DIGITS), weight: 12 }, fc.constantFrom(".", "e", "-", " ")), {
        maxLength: 24,
      })
      .map((cs) => cs.join(""));
    // Near the limits: leading and trailing zeros around a few significant digits, up to about 70 characters.
    const padded = fc
      .tuple(
        fc.nat({ max: 40 }),
        digitString(1, 20),
        fc.option(fc.tuple(digitString(0, 20), fc.nat({ max: 40 })), { nil: undefined }),
      )
      .map(([lead, whole, fraction]) => {
        const head = "0".repeat(lead) + whole;
        return fraction === undefined ? head : `${head}.${fraction[0]}${"0".repeat(fraction[1])}`;
      });
    fc.assert(
      fc.property(fc.oneof(anyText, mostlyDigits, padded, plainDecimal), (text) => {
        const parsed = parseDecimal(text);
        expect(parsed !== undefined, JSON.stringify(text)).toBe(shouldAccept(text));
        if (parsed) expect(new Big(formatDecimal(parsed)).eq(new Big(text)), JSON.stringify(text)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
