// The one signed-call loop (src/lib/signed-call.ts) through each of its extension points: the send slot taken
// before each attempt (and taken again when the isolate missed it), sign, send (and what a thrown send becomes),
// read, observe, and the failure-retry policy (its waits, its attempt count beside the one timestamp re-sign, and
// the failure that stands when a retry gets no slot). Time is a variable the steps move by hand.
import { describe, expect, it } from "vitest";
import { OffsetEstimator } from "../../src/lib/estimator.ts";
import {
  type Attempt,
  type Failure,
  type Observation,
  type SignedCallSteps,
  signedCall,
} from "../../src/lib/signed-call.ts";

/** 2026-12-06T12:00:00Z, local epoch ms. */
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

/** An answer from the venue's API, its `Date` at `venueMs`. */
function answer(status: number, venueMs: number, body = ""): Response {
  return new Response(body, {
    status,
    headers: { date: new Date(venueMs).toUTCString(), "content-type": "application/json" },
  });
}

interface Harness {
  steps: SignedCallSteps<string>;
  log: string[];
  observed: Observation<string>[];
  clock: { now: number };
}

/**
 * Steps that log every call. `answers` are sent back in order (an Error is thrown by the send); each send takes
 * 40 ms, and the venue's clock runs `venueAheadMs` ahead of the local one.
 */
function harness(answers: (Response | Error)[], overrides: Partial<SignedCallSteps<string>> = {}): Harness {
  const log: string[] = [];
  const observed: Observation<string>[] = [];
  const clock = { now: T0 };
  const estimator = new OffsetEstimator();
  const steps: SignedCallSteps<string> = {
    now: () => clock.now,
    estimator,
    windowSeconds: 5,
    sign: async (timestamp) => {
      log.push(`sign ${timestamp - T0 / 1000}`);
      return `signed@${timestamp}`;
    },
    send: async (attempt) => {
      log.push(`send ${attempt.number}${attempt.resigned ? " resigned" : ""}`);
      clock.now += 40;
      const next = answers.shift();
      if (!next || next instanceof Error) throw next ?? new Error("no answer left");
      return next;
    },
    read: async (response) => ({ response, text: await response.clone().text() }),
    observe: (seen) => {
      observed.push(seen);
      if (seen.sample) estimator.add(seen.sample, { rejected: seen.rejected });
    },
    ...overrides,
  };
  return { steps, log, observed, clock };
}

describe("signedCall: sign, send, read, observe", () => {
  it("signs with the local clock when there is no estimate, and hands back the answer with its attempt", async () => {
    const { steps, log, observed } = harness([answer(200, T0 + 20, '{"ok":true}')]);
    const { response, attempt } = await signedCall(steps);
    expect(await response.text()).toBe('{"ok":true}');
    expect(attempt).toEqual({
      number: 1,
      timestamp: T0 / 1000,
      estimate: undefined,
      resigned: false,
      signed: `signed@${T0 / 1000}`,
    });
    expect(log).toEqual(["sign 0", "send 1"]);
    expect(observed).toHaveLength(1);
    expect(observed[0]).toMatchObject({
      sample: { tSend: T0, tRecv: T0 + 40, date: T0 / 1000 },
      tRecv: T0 + 40,
      status: 200,
      refusedTime: false,
      rejected: false,
      timestamp: T0 / 1000,
      windowSeconds: 5,
      date: T0 / 1000,
    });
  });

  it("re-signs once after a timestamp refusal, with what that refusal taught, and never twice", async () => {
    // The venue is 60 s ahead: the refusal's Date puts the local timestamp far outside the 5 s window. Its bracket,
    // [60 000 − 40, 61 000] ms, centres on 60 480 ms, so the re-sign at T0 + 40 ms signs T0 + 61 s. The second
    // refusal's Date (T0 + 120 s) is outside the window again: a refusal still, but there is no second re-sign.
    const { steps, log, observed } = harness([answer(401, T0 + 60_000), answer(401, T0 + 120_000)]);
    const { response, attempt } = await signedCall(steps);
    expect(response.status).toBe(401);
    expect(log).toEqual(["sign 0", "send 1", "sign 61", "send 2 resigned"]);
    expect(attempt.number).toBe(2);
    expect(attempt.resigned).toBe(true);
    expect(observed.map((seen) => [seen.refusedTime, seen.rejected])).toEqual([
      [true, true],
      [true, false],
    ]);
  });

  it("reads no refusal when the read step gives no text, whatever the Date says", async () => {
    const { steps, log, observed } = harness([answer(401, T0 + 60_000)], {
      read: async (response) => ({ response, text: undefined }),
    });
    expect((await signedCall(steps)).response.status).toBe(401);
    expect(log).toEqual(["sign 0", "send 1"]);
    expect(observed[0]?.refusedTime).toBe(false);
  });

  it("hands back what the read step made of the answer, and ends the call when it throws", async () => {
    const replaced = new Response("replaced", { status: 202 });
    const { steps } = harness([answer(200, T0)], { read: async () => ({ response: replaced, text: "" }) });
    expect((await signedCall(steps)).response).toBe(replaced);
    const refused = new Error("redirect");
    const ended = harness([answer(302, T0)], {
      read: async () => {
        throw refused;
      },
    });
    await expect(signedCall(ended.steps)).rejects.toBe(refused);
    expect(ended.observed).toHaveLength(0);
  });

  it("throws what a thrown send becomes (sendError), or the error itself without one", async () => {
    const down = new Error("connection refused");
    await expect(signedCall(harness([down]).steps)).rejects.toBe(down);
    const { steps } = harness([down], { sendError: (error, attempt) => `failed ${attempt.number}: ${error}` });
    await expect(signedCall(steps)).rejects.toBe("failed 1: Error: connection refused");
  });
});

describe("signedCall: the send slot (beforeAttempt)", () => {
  it("reads the clock after the slot is granted, not before", async () => {
    const h = harness([answer(200, T0)]);
    const takes: number[] = [];
    h.steps = {
      ...h.steps,
      beforeAttempt: {
        take: async (number) => {
          takes.push(number);
          h.clock.now += 3_000; // the slot was 3 s away
          return Number.POSITIVE_INFINITY;
        },
        missed: () => undefined,
      },
    };
    const { attempt } = await signedCall(h.steps);
    expect(takes).toEqual([1]);
    expect(attempt.timestamp).toBe(T0 / 1000 + 3);
  });

  it("signs again with a new slot when the isolate missed the slot's time, without counting an attempt", async () => {
    const h = harness([answer(200, T0)]);
    let missed = 0;
    const deadlines = [T0 - 1, T0 + 10];
    h.steps = {
      ...h.steps,
      beforeAttempt: {
        take: async () => deadlines.shift() ?? 0,
        missed: () => {
          missed++;
        },
      },
    };
    const { attempt } = await signedCall(h.steps);
    expect(missed).toBe(1);
    expect(h.log).toEqual(["sign 0", "sign 0", "send 1"]);
    expect(attempt.number).toBe(1);
  });

  it("sends nothing when `missed` gives up", async () => {
    const h = harness([answer(200, T0)]);
    const tooSlow = new Error("too slow");
    h.steps = {
      ...h.steps,
      beforeAttempt: {
        take: async () => T0 - 1,
        missed: () => {
          throw tooSlow;
        },
      },
    };
    await expect(signedCall(h.steps)).rejects.toBe(tooSlow);
    expect(h.log).toEqual(["sign 0"]);
  });
});

describe("signedCall: failure retries (retry)", () => {
  /** A policy that retries what `retried` says after `waitMs`, logging every decision and wait. */
  function policy(h: Harness, retried: (failure: Failure, attempt: Attempt<unknown>) => boolean, waitMs = 25) {
    return {
      after: (failure: Failure, attempt: Attempt<unknown>) => {
        const what = failure.response ? `status ${failure.response.status}` : `error ${String(failure.error)}`;
        h.log.push(`after ${attempt.number}${attempt.resigned ? " resigned" : ""}: ${what}`);
        return retried(failure, attempt) ? waitMs : undefined;
      },
      keepsPrevious: (error: unknown) => error === "no slot",
      sleep: async (ms: number) => {
        h.log.push(`sleep ${ms}`);
        h.clock.now += ms;
      },
    };
  }

  it("sends again after a thrown send and after an answer the policy names, with its wait", async () => {
    const h = harness([new Error("reset"), answer(503, T0 + 65), answer(200, T0 + 130)]);
    h.steps = { ...h.steps, retry: policy(h, (failure) => failure.response?.status !== 200) };
    const { response, attempt } = await signedCall(h.steps);
    expect(response.status).toBe(200);
    expect(attempt.number).toBe(3);
    expect(h.log).toEqual([
      "sign 0",
      "send 1",
      "after 1: error Error: reset",
      "sleep 25",
      "sign 0",
      "send 2",
      "after 2: status 503",
      "sleep 25",
      "sign 0",
      "send 3",
      "after 3: status 200",
    ]);
  });

  it("tells the policy which attempt is the timestamp re-sign, and asks nothing of a refusal it re-signs", async () => {
    const h = harness([answer(401, T0 + 60_000), answer(503, T0 + 60_040)]);
    h.steps = { ...h.steps, retry: policy(h, () => false) };
    const { response, attempt } = await signedCall(h.steps);
    expect(response.status).toBe(503);
    expect(attempt).toMatchObject({ number: 2, resigned: true });
    expect(h.log).toEqual(["sign 0", "send 1", "sign 61", "send 2 resigned", "after 2 resigned: status 503"]);
  });

  it("lets the earlier answer stand when a retry gets no slot and the policy keeps it", async () => {
    const h = harness([answer(503, T0), answer(200, T0)]);
    const slots: (number | string)[] = [Number.POSITIVE_INFINITY, "no slot"];
    h.steps = {
      ...h.steps,
      retry: policy(h, () => true),
      beforeAttempt: {
        take: async () => {
          const slot = slots.shift();
          if (typeof slot === "string") throw slot;
          return slot ?? 0;
        },
        missed: () => undefined,
      },
    };
    const { response, attempt } = await signedCall(h.steps);
    expect(response.status).toBe(503);
    expect(attempt.number).toBe(1);
    expect(h.log).toEqual(["sign 0", "send 1", "after 1: status 503", "sleep 25"]);
  });

  it("throws the earlier send error when a retry gets no slot, and a slot error the policy does not keep", async () => {
    const slotted = (h: Harness, refusal: string): Harness => {
      let taken = 0;
      h.steps = {
        ...h.steps,
        retry: policy(h, () => true),
        beforeAttempt: {
          take: async () => {
            if (taken++ > 0) throw refusal;
            return Number.POSITIVE_INFINITY;
          },
          missed: () => undefined,
        },
      };
      return h;
    };
    const reset = new Error("reset");
    await expect(signedCall(slotted(harness([reset]), "no slot").steps)).rejects.toBe(reset);
    await expect(signedCall(slotted(harness([reset]), "halted").steps)).rejects.toBe("halted");
  });

  it("throws a first attempt's slot refusal: nothing stands before the first send", async () => {
    const h = harness([answer(200, T0)]);
    h.steps = {
      ...h.steps,
      retry: policy(h, () => true),
      beforeAttempt: {
        take: async () => {
          throw "no slot";
        },
        missed: () => undefined,
      },
    };
    await expect(signedCall(h.steps)).rejects.toBe("no slot");
    expect(h.log).toEqual([]);
  });

  it("throws a send error the policy does not retry", async () => {
    const h = harness([new Error("timeout")]);
    h.steps = { ...h.steps, retry: policy(h, () => false) };
    await expect(signedCall(h.steps)).rejects.toThrow("timeout");
    expect(h.log).toEqual(["sign 0", "send 1", "after 1: error Error: timeout"]);
  });
});
