// The one rule for "the venue refused our timestamp" (so the request was not processed and may be re-signed).
import { describe, expect, it } from "vitest";
import { isAuthRefusal, isTimestampRejection, venueMessage } from "../../src/lib/rejection.ts";

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
  it("reads Coinbase's v2 errors[] shape, joining several messages with '; '", () => {
    expect(venueMessage('{"errors":[{"id":"authentication_error","message":"invalid timestamp"}]}')).toBe(
      "invalid timestamp",
    );
    expect(
      venueMessage('{"errors":[{"id":"validation_error","message":"a"},{"id":"x"},7,{"id":"y","message":"b"}]}'),
    ).toBe("a; b");
  });
  it("keeps message before title before errors[]", () => {
    expect(venueMessage('{"message":"m","title":"t","errors":[{"message":"e"}]}')).toBe("m");
    expect(venueMessage('{"title":"t","errors":[{"message":"e"}]}')).toBe("t");
  });
  it("gives undefined, without throwing, for an errors[] that holds no message", () => {
    expect(venueMessage('{"errors":{"message":"invalid timestamp"}}')).toBeUndefined();
    expect(venueMessage('{"errors":"invalid timestamp"}')).toBeUndefined();
    expect(venueMessage('{"errors":[]}')).toBeUndefined();
    expect(venueMessage('{"errors":[{"message":5}]}')).toBeUndefined();
    expect(venueMessage('{"errors":[null,"invalid timestamp",[]]}')).toBeUndefined();
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

// One test per body shape the Coinbase APIs refuse with (issue 18): each on 400 and on 401.
describe("timestamp rejection in every Coinbase body shape", () => {
  const shapes = [
    ["legacy {message}", '{"message":"request timestamp expired"}'],
    ["Exchange wording", '{"message":"Request timestamp is expired"}'],
    ["v2 errors[]", '{"errors":[{"id":"authentication_error","message":"invalid timestamp"}]}'],
  ] as const;
  for (const [shape, body] of shapes) {
    it(`recognises the ${shape} shape on 400 and 401, and neither is an auth refusal`, () => {
      expect(isTimestampRejection(400, body)).toBe(true);
      expect(isTimestampRejection(401, body)).toBe(true);
      expect(isAuthRefusal(401, body)).toBe(false);
    });
    it(`ignores the ${shape} shape on 403 and 500`, () => {
      expect(isTimestampRejection(403, body)).toBe(false);
      expect(isTimestampRejection(500, body)).toBe(false);
    });
  }
});

describe("auth refusal", () => {
  it("is a 401 for the key in the v2 errors[] shape, not a timestamp rejection", () => {
    const body = '{"errors":[{"id":"authentication_error","message":"invalid API key"}]}';
    expect(isTimestampRejection(401, body)).toBe(false);
    expect(isTimestampRejection(400, body)).toBe(false);
    expect(isAuthRefusal(401, body)).toBe(true);
  });
  it("is a 401 for the signature in the {message} shape, not a timestamp rejection", () => {
    const body = '{"message":"invalid signature"}';
    expect(isTimestampRejection(401, body)).toBe(false);
    expect(isAuthRefusal(401, body)).toBe(true);
  });
  it("is a 401 whatever the body, unless it speaks of the timestamp", () => {
    expect(isAuthRefusal(401, "")).toBe(true);
    expect(isAuthRefusal(401, '{"errors":[]}')).toBe(true);
    expect(isAuthRefusal(401, "Unauthorized")).toBe(true);
  });
  it("is only ever a 401", () => {
    expect(isAuthRefusal(400, '{"message":"invalid signature"}')).toBe(false);
    expect(isAuthRefusal(403, '{"errors":[{"id":"invalid_scope","message":"invalid scope"}]}')).toBe(false);
    expect(isAuthRefusal(500, '{"message":"invalid API key"}')).toBe(false);
  });
});
