// The leak scanner's core: which captured texts contain which secrets (reported by a 4-character prefix only).
export function findLeaks(secrets: Iterable<string>, captured: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const secret of secrets) {
    for (const text of captured) {
      if (text.includes(secret))
        leaks.push(`${secret.slice(0, 4)}… in: ${text.replaceAll(secret, "[SECRET]").slice(0, 160)}`);
    }
  }
  return leaks;
}

/** What setup-leaks.ts has captured and learned in the current file, at `globalThis[LEAK_SCANNER]`. */
export interface LeakScanner {
  captured: string[];
  secrets: Set<string>;
}

export const LEAK_SCANNER = Symbol.for("skewguard.test.leak-scanner");

/** A console call as the scanner captures it. */
export function consoleLine(args: readonly unknown[]): string {
  return args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
}

/**
 * For a test that silences or replaces a console method with `vi.spyOn(console, …).mockImplementation`: the
 * scanner's own console wrapper is then never called, so the replacement hands each call to it here.
 */
export function scanConsole(args: readonly unknown[]): void {
  ((globalThis as Record<symbol, unknown>)[LEAK_SCANNER] as LeakScanner | undefined)?.captured.push(consoleLine(args));
}
