/**
 * Which consumer a queue's batch goes to, by the queue's name (wrangler.toml): `skewguard-deliveries`,
 * `skewguard-intx-deliveries` and `skewguard-cde-deliveries` carry deliveries; `skewguard-alerts` and its venue
 * twins carry alerts. The rule is the name's ending, so a renamed or added environment keeps working; any other
 * name is `undefined`, a configuration mistake the queue handler retries and reports rather than guesses at.
 */
export type QueueKind = "deliveries" | "alerts";

export function queueKind(name: string): QueueKind | undefined {
  if (name.endsWith("-deliveries")) return "deliveries";
  if (name.endsWith("-alerts")) return "alerts";
  return undefined;
}
