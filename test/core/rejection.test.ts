// The one rule for "the venue refused our timestamp" (so the request was not processed and may be re-signed).
import { describe, expect, it } from "vitest";
import { isTimestampRejection, venueMessage } from "../../src/lib/rejection.ts";

describe("venue error bodies", () => {
  it("reads both INTX shapes and CDE's", () => {
    expect(venueMessage('{"message":"Invalid symbol"}')).toBe("Invalid symbol");
    expect(
      venueMessage(
        '{"title":"io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID)","status":400}',
      ),
    ).toBe("io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID)");
    expect(venueMessage("upstream connect error")).toBe("upstream connect error");
    expect(venueMessage("[1,2]")).toBeUndefined();
  });
});

describe("timestamp rejection", () => {
  it("recognises the known and likely phrasings on 400 and 401", () => {
    expect(isTimestampRejection(401, '{"message":"request timestamp expired"}')).toBe(true);
    expect(isTimestampRejection(400, '{"message":"Invalid timestamp"}')).toBe(true);
    expect(
      isTimestampRejection(400, '{"title":"BadRequestResponse: CB-ACCESS-TIMESTAMP outside of window","status":400}'),
    ).toBe(true);
    expect(isTimestampRejection(401, '{"message":"request expired"}')).toBe(true);
  });
  it("does not mistake other refusals for one, so nothing is re-sent by accident", () => {
    expect(isTimestampRejection(400, '{"title":"Order rejected (INVALID_EXPIRE_TIME)","status":400}')).toBe(false);
    expect(isTimestampRejection(400, '{"message":"order expired"}')).toBe(false);
    expect(isTimestampRejection(401, '{"message":"invalid signature"}')).toBe(false);
    expect(isTimestampRejection(403, '{"message":"request timestamp expired"}')).toBe(false);
    expect(isTimestampRejection(500, '{"message":"request timestamp expired"}')).toBe(false);
  });
});
