/**
 * The one signed-call loop: sign → send → learn from the answer's `Date` → re-sign once when the venue refused the
 * timestamp. `CoinbaseClient.fetch` runs it with the plainest steps; the skewguard Worker runs it with its own (the
 * rate gate's send slot, a bounded read and echo check, clock alerts, failure retries). The loop owns the order and
 * the rules that keep a signed timestamp fresh:
 *   - every attempt reads the clock after the last await before the send (only the HMAC follows), and is re-signed;
 *   - an attempt signed too late for its send slot is signed again with a new slot, not sent;
 *   - every answer is offered to `observe` with its clock sample (`venueSample`: only the venue API's own answers);
 *   - a timestamp refusal (`isTimestampRejection`, the answer's own `Date` first) is re-signed once, for any method:
 *     the venue refused it before processing it; that re-sign never takes a failure retry's place;
 *   - a failure (the send threw, or an answer the retry policy names) is sent again only when the policy says so.
 */
import { venueSample } from "./date.ts";
import { type ClockEstimate, type ClockSample, type OffsetEstimator, timestampFor } from "./estimator.ts";
import { isTimestampRejection, type RefusalEvidence } from "./rejection.ts";

/** One signed attempt. */
export interface Attempt<Signed> {
  /** 1 for the first send; every send counts, the re-signed one too (a slot missed before sending does not). */
  number: number;
  timestamp: number;
  /** The estimate the timestamp was read from; undefined when there was none. */
  estimate: ClockEstimate | undefined;
  /** Whether this attempt is the timestamp re-sign, or comes after it: there is no second one. */
  resigned: boolean;
  /** What the `sign` step made of the timestamp. */
  signed: Signed;
}

/** An answer as the `read` step left it. */
export interface ReadAnswer {
  /** The response the call hands back if this answer stands. */
  response: Response;
  /** The body text a timestamp refusal is read from; undefined when not read (then it is no refusal). */
  text: string | undefined;
}

/** What one answer says of the clock, for `observe`; it is also the refusal evidence the loop judged. */
export interface Observation<Signed> extends RefusalEvidence {
  /** The answer's clock sample, when it came from the venue's API. */
  sample: ClockSample | undefined;
  /** Local time the answer arrived. */
  tRecv: number;
  status: number;
  text: string | undefined;
  /** The venue refused the timestamp. */
  refusedTime: boolean;
  /** It refused it and the call re-signs: the sample proves the estimate wrong (`OffsetEstimator.add`'s `rejected`). */
  rejected: boolean;
  attempt: Attempt<Signed>;
}

/** An attempt that did not give a final answer: the send threw, or the venue answered. */
export type Failure = { error: unknown; response?: undefined } | { response: Response; tRecv: number };

/** When a failed attempt is sent again. Without one, a thrown send is thrown and every answer stands. */
export interface RetryPolicy {
  /** How long to wait before sending again after `failure`, ms; undefined: the failure stands. */
  after(failure: Failure, attempt: Attempt<unknown>): number | undefined;
  /** Whether `error`, thrown by `beforeAttempt.take` for a retry, lets the failure before it stand (else it is thrown). */
  keepsPrevious(error: unknown): boolean;
  sleep(ms: number): Promise<void>;
}

/** The send slot an attempt waits for before it reads the clock (the Worker's rate gate). */
export interface AttemptSlot {
  /** Waits for a slot for attempt `number`; returns the local time by which the attempt must be sent. */
  take(number: number): Promise<number>;
  /** The attempt was signed after that time: throw to give up, or return to take a new slot and sign again. */
  missed(): void;
}

/** The steps of one signed call. */
export interface SignedCallSteps<Signed> {
  /** Local epoch milliseconds. */
  now(): number;
  readonly estimator: Pick<OffsetEstimator, "estimate">;
  /** The venue's timestamp window, seconds (`RefusalEvidence`). */
  readonly windowSeconds: number;
  readonly beforeAttempt?: AttemptSlot;
  /** Signs the request with `timestamp`. */
  sign(timestamp: number): Promise<Signed>;
  /** Sends the signed request. */
  send(attempt: Attempt<Signed>): Promise<Response>;
  /** What a send that threw becomes (e.g. a typed error); unset: the error as thrown. */
  sendError?(error: unknown, attempt: Attempt<Signed>): unknown;
  /** Reads the answer; it may throw to end the call (nothing is learned from it then). */
  read(response: Response, attempt: Attempt<Signed>): Promise<ReadAnswer>;
  /** Learns from the answer: feed the estimator, raise alerts. */
  observe(observation: Observation<Signed>): void;
  readonly retry?: RetryPolicy;
}

/** The answer that stands, and the attempt that got it. */
export interface SignedAnswer<Signed> {
  response: Response;
  attempt: Attempt<Signed>;
  /** The answer's body as the `read` step read it, when it did. */
  text: string | undefined;
}

/** A failure a retry would replace: it stands if the retry gets no send slot. */
type Standing<Signed> = { error: unknown } | SignedAnswer<Signed>;

/** Runs one signed call to its answer (see the file's comment for the rules). */
export async function signedCall<Signed>(steps: SignedCallSteps<Signed>): Promise<SignedAnswer<Signed>> {
  let resigned = false;
  let standing: Standing<Signed> | undefined;
  for (let number = 1; ; number++) {
    const attempt = await signAttempt(steps, number, resigned, standing !== undefined);
    if (!attempt) return stand(standing);
    const tSend = steps.now();
    let response: Response;
    try {
      response = await steps.send(attempt);
    } catch (thrown) {
      const error = steps.sendError ? steps.sendError(thrown, attempt) : thrown;
      const wait = steps.retry?.after({ error }, attempt);
      if (wait === undefined) throw error;
      standing = { error };
      await steps.retry?.sleep(wait);
      continue;
    }
    const tRecv = steps.now();
    const answer = await steps.read(response, attempt);
    if (learn(steps, response, answer.text, attempt, tSend, tRecv)) {
      resigned = true;
      await answer.response.body?.cancel();
      continue; // re-signed with what this refusal just taught
    }
    const wait = steps.retry?.after({ response: answer.response, tRecv }, attempt);
    if (wait === undefined) return { response: answer.response, attempt, text: answer.text };
    standing = { response: answer.response, attempt, text: answer.text };
    await steps.retry?.sleep(wait);
  }
}

/**
 * Takes a send slot, reads the clock and signs; with a new slot when the slot's time passed meanwhile. Undefined
 * when a retry got no slot and the failure before it stands (`RetryPolicy.keepsPrevious`).
 */
async function signAttempt<Signed>(
  steps: SignedCallSteps<Signed>,
  number: number,
  resigned: boolean,
  retrying: boolean,
): Promise<Attempt<Signed> | undefined> {
  const slot = steps.beforeAttempt;
  for (;;) {
    let sendBy = Number.POSITIVE_INFINITY;
    if (slot) {
      try {
        sendBy = await slot.take(number);
      } catch (err) {
        if (retrying && steps.retry?.keepsPrevious(err)) return undefined;
        throw err;
      }
    }
    // The clock is read after the last await that precedes the send: only the HMAC itself follows.
    const now = steps.now();
    const estimate = steps.estimator.estimate(now);
    const timestamp = timestampFor(now, estimate);
    const signed = await steps.sign(timestamp);
    if (!slot || steps.now() <= sendBy) return { number, timestamp, estimate, resigned, signed };
    slot.missed();
  }
}

/** Judges one answer (timestamp refusal or not), hands it to `observe`, and returns whether to re-sign. */
function learn<Signed>(
  steps: SignedCallSteps<Signed>,
  response: Response,
  text: string | undefined,
  attempt: Attempt<Signed>,
  tSend: number,
  tRecv: number,
): boolean {
  const sample = venueSample(response, tSend, tRecv);
  const { status } = response;
  const seen: Observation<Signed> = {
    timestamp: attempt.timestamp,
    windowSeconds: steps.windowSeconds,
    date: sample?.date,
    sample,
    tRecv,
    status,
    text,
    refusedTime: false,
    rejected: false,
    attempt,
  };
  seen.refusedTime = text !== undefined && isTimestampRejection(status, text, seen);
  seen.rejected = seen.refusedTime && !attempt.resigned;
  steps.observe(seen);
  return seen.rejected;
}

function stand<Signed>(standing: Standing<Signed> | undefined): SignedAnswer<Signed> {
  if (standing && "response" in standing) return standing;
  throw standing?.error;
}
