// The scanner that setup-leaks.ts runs after every workerd test file must catch a leak, or it proves nothing.
import { describe, expect, it } from "vitest";
import { findLeaks } from "../support/leaks.ts";

describe("leak scanner", () => {
  it("finds a secret inside a log line or a body, and nothing in clean text", () => {
    const secrets = ["s3cr3t-passphrase", "Zm9vYmFyYmF6cXV4"];
    expect(findLeaks(secrets, ['{"level":"info","route":"/x"}', "ok"])).toEqual([]);
    const found = findLeaks(secrets, ['{"passphrase":"s3cr3t-passphrase"}', "sig=Zm9vYmFyYmF6cXV4;"]);
    expect(found).toHaveLength(2);
    expect(found.join("\n")).not.toContain("s3cr3t-passphrase");
  });
});
