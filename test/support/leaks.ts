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
