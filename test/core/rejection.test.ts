// The one rule for "the venue refused our timestamp" (so the request was not processed and may be re-signed).
import { describe, expect, it } from "vitest";
import {
  isAuthRefusal,
  isTimestampPhrase,
  isTimestampRejection,
  venueMessage,
  windowVerdict,
} from "../../src/lib/rejection.ts";

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

// The refusal's own Date against the signed timestamp (issue 23, item 2): INTX most likely answers a stale timestamp
// with the same generic 401 as a bad signature, so the words cannot be what decides.
describe("timestamp refusal read from the refusal's Date", () => {
  const GENERIC = '{"title":"io.javalin.http.UnauthorizedResponse: Unauthorized","status":401}';
  const D = 1_700_000_000; // the refusal's Date: the venue read its clock somewhere in [D, D + 1)
  const W = 5;

  it("windowVerdict: outside when no reading in [D, D+1) is within W s, inside when every one is, else edge", () => {
    // Worked by hand: readings r in [D, D+1); outside iff T + W < D or T - W >= D + 1; inside iff T - W <= D and
    // T + W >= D + 1.
    expect(windowVerdict(D - 6, W, D)).toBe("outside"); // r - T > 6 > 5 for every r
    expect(windowVerdict(D + 6, W, D)).toBe("outside"); // T - r > 5 for every r < D + 1
    expect(windowVerdict(D - 5, W, D)).toBe("edge"); // r = D: 5 (inside); r = D + 0.5: 5.5 (outside)
    expect(windowVerdict(D + 5, W, D)).toBe("inside"); // T - r in (4, 5]
    expect(windowVerdict(D - 4, W, D)).toBe("inside"); // r - T in [4, 5)
    expect(windowVerdict(D, W, D)).toBe("inside");
    expect(windowVerdict(D - 61, W, D)).toBe("outside");
    expect(windowVerdict(D + 37, 30, D)).toBe("outside");
    expect(windowVerdict(D + 30, 30, D)).toBe("inside");
  });

  it("a generic 401 or 400 whose Date shows the timestamp outside the window is a timestamp refusal", () => {
    const evidence = { timestamp: D - 62, windowSeconds: W, date: D };
    expect(isTimestampRejection(401, GENERIC, evidence)).toBe(true);
    expect(isTimestampRejection(401, "Unauthorized", evidence)).toBe(true);
    expect(isTimestampRejection(400, '{"message":"Unauthorized"}', evidence)).toBe(true);
    expect(isAuthRefusal(401, GENERIC, evidence)).toBe(false);
  });

  it("a 401 whose Date shows the timestamp inside the window is a credentials refusal, whatever its words", () => {
    const evidence = { timestamp: D + 1, windowSeconds: W, date: D };
    expect(isTimestampRejection(401, GENERIC, evidence)).toBe(false);
    expect(isTimestampRejection(401, '{"message":"request timestamp expired"}', evidence)).toBe(false);
    expect(isAuthRefusal(401, GENERIC, evidence)).toBe(true);
  });

  it("at the edge second a 400 or 401 is re-signed once, whatever its words (the venue acted on neither)", () => {
    const edge = { timestamp: D - 5, windowSeconds: W, date: D };
    expect(isTimestampRejection(401, GENERIC, edge)).toBe(true);
    expect(isTimestampRejection(400, '{"message":"Unauthorized"}', edge)).toBe(true);
    expect(isTimestampRejection(400, '{"title":"Order rejected (INVALID_SIZE)","status":400}', edge)).toBe(true);
    expect(isTimestampRejection(403, GENERIC, edge)).toBe(false);
  });

  it("without a usable Date, only the venue's own words decide, and only on 400 and 401", () => {
    const noDate = { timestamp: D - 62, windowSeconds: W, date: undefined };
    expect(isTimestampRejection(401, GENERIC, noDate)).toBe(false);
    expect(isTimestampRejection(401, '{"message":"request timestamp expired"}', noDate)).toBe(true);
    expect(isTimestampRejection(403, GENERIC, { ...noDate, date: D })).toBe(false);
    expect(isTimestampRejection(500, GENERIC, { ...noDate, date: D })).toBe(false);
  });
});

// Caller text inside a refusal (issue 24, item 7): an order whose client_order_id says "timestamp" and is refused
// as a duplicate is not a clock problem.
describe("caller-supplied text never reads as a timestamp refusal", () => {
  const callerTexts = ["timestamp-dup-1", "request timestamp expired", "Invalid timestamp", "clock skew"];
  for (const text of callerTexts) {
    it(`a duplicate refusal quoting ${JSON.stringify(text)} is not one`, () => {
      const title = `io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID ${text})`;
      expect(isTimestampRejection(400, JSON.stringify({ title, status: 400 }))).toBe(false);
      expect(isTimestampRejection(400, JSON.stringify({ message: `Invalid instrument ${text}` }))).toBe(false);
      expect(isTimestampRejection(401, JSON.stringify({ message: "Unauthorized", detail: text }))).toBe(false);
    });
  }
  it("the known phrases match as the whole message, after a Javalin class prefix", () => {
    expect(isTimestampPhrase("io.javalin.http.UnauthorizedResponse: request timestamp expired")).toBe(true);
    expect(isTimestampPhrase("Request timestamp is expired.")).toBe(true);
    expect(isTimestampPhrase("CB-ACCESS-TIMESTAMP outside of window")).toBe(true);
    expect(isTimestampPhrase("order rejected: request timestamp expired")).toBe(false);
    expect(isTimestampPhrase("request timestamp expired for order abc")).toBe(false);
    expect(isTimestampPhrase(undefined)).toBe(false);
  });
});
