// Which consumer a queue's batch goes to (src/core/queues.ts): by the ending of the queue's name only.
import { describe, expect, it } from "vitest";
import { queueKind } from "../../src/core/queues.ts";

describe("queue routing by name", () => {
  it("names ending in -deliveries or -alerts, of any environment", () => {
    expect(queueKind("skewguard-deliveries")).toBe("deliveries");
    expect(queueKind("skewguard-cde-deliveries")).toBe("deliveries");
    expect(queueKind("skewguard-alerts")).toBe("alerts");
    expect(queueKind("skewguard-intx-alerts")).toBe("alerts");
  });

  it("anything else has no consumer", () => {
    for (const name of [
      "skewguard-jobs",
      "deliveries",
      "alerts",
      "skewguard-deliveries-dlq",
      "skewguard-alerts2",
      "",
    ]) {
      expect(queueKind(name)).toBeUndefined();
    }
  });
});
