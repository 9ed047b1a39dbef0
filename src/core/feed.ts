/**
 * The market-data feed's rules (docs/websocket.md), pure: what a bot may send (a `SUBSCRIBE` or `UNSUBSCRIBE`, whose
 * `key`, `passphrase`, `time` and `signature` skewguard replaces), the (channel, product) pairs a message names, the
 * reference counts that merge every bot's pairs into one upstream subscription, which bots an upstream frame goes to,
 * and each bot's bounded outbox. The Durable Object that applies them is adapters/market-feed.ts.
 */
import { isRecord } from "./parse.ts";

/** A subscription pair, `"<channel> <product>"`; the product `*` is a channel subscribed without `product_ids`. */
export type Pair = string;
export const ALL_PRODUCTS = "*";

const TYPES = { SUBSCRIBE: "subscribe", UNSUBSCRIBE: "unsubscribe" } as const;
/** The fields a bot may fill with anything or nothing: skewguard writes the account's own. */
export const CREDENTIAL_FIELDS = ["key", "passphrase", "time", "signature"] as const;

export interface BotMessage {
  kind: "subscribe" | "unsubscribe";
  /** The message without the four credential fields, every other field as the bot sent it. */
  rest: Record<string, unknown>;
  pairs: Pair[];
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

/** A bot's frame as a subscription message, or why it is refused (it is then not forwarded). */
export function parseBotMessage(text: string): BotMessage | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: "not JSON: send a SUBSCRIBE or UNSUBSCRIBE message" };
  }
  const type = isRecord(parsed) ? parsed.type : undefined;
  const kind = typeof type === "string" && Object.hasOwn(TYPES, type) ? TYPES[type as keyof typeof TYPES] : undefined;
  if (!isRecord(parsed) || kind === undefined) return { error: "only SUBSCRIBE and UNSUBSCRIBE are relayed" };
  const channels = strings(parsed.channels);
  if (channels.length === 0) return { error: "channels must list at least one channel" };
  const products = Array.isArray(parsed.product_ids) ? strings(parsed.product_ids) : [ALL_PRODUCTS];
  const rest = Object.fromEntries(
    Object.entries(parsed).filter(([k]) => !(CREDENTIAL_FIELDS as readonly string[]).includes(k)),
  );
  return { kind, rest, pairs: channels.flatMap((c) => products.map((p) => `${c} ${p}`)) };
}

/** The upstream messages that (un)subscribe `pairs`, one per channel (`product_ids` left out for `*`). */
export function subscriptionMessages(kind: BotMessage["kind"], pairs: Iterable<Pair>): Record<string, unknown>[] {
  const byChannel = new Map<string, string[]>();
  for (const pair of pairs) {
    const [channel = "", product = ""] = pair.split(" ");
    byChannel.set(channel, [...(byChannel.get(channel) ?? []), product]);
  }
  const type = kind === "subscribe" ? "SUBSCRIBE" : "UNSUBSCRIBE";
  return [...byChannel].flatMap(([channel, products]) => {
    const named = products.filter((p) => p !== ALL_PRODUCTS);
    const all = products.length > named.length ? [{ type, channels: [channel] }] : [];
    return [...all, ...(named.length > 0 ? [{ type, channels: [channel], product_ids: named }] : [])];
  });
}

/** Reference counts of pairs across bots: what the one upstream connection must stay subscribed to. */
export class PairCounts {
  readonly #counts = new Map<Pair, number>();

  /** Counts `pairs` once more; returns those that were not subscribed before. */
  add(pairs: Iterable<Pair>): Pair[] {
    const fresh: Pair[] = [];
    for (const pair of pairs) {
      const n = this.#counts.get(pair) ?? 0;
      if (n === 0) fresh.push(pair);
      this.#counts.set(pair, n + 1);
    }
    return fresh;
  }

  /** Counts `pairs` once less; returns those no bot wants any more. */
  remove(pairs: Iterable<Pair>): Pair[] {
    const gone: Pair[] = [];
    for (const pair of pairs) {
      const n = (this.#counts.get(pair) ?? 0) - 1;
      if (n > 0) this.#counts.set(pair, n);
      else if (this.#counts.delete(pair)) gone.push(pair);
    }
    return gone;
  }

  pairs(): Pair[] {
    return [...this.#counts.keys()];
  }
}

export interface FrameTopic {
  channel: string;
  /** `undefined` when the frame names no product. */
  product: string | undefined;
  type: string | undefined;
}

/** The channel, product and type of an upstream frame. */
export function frameTopic(frame: unknown): FrameTopic | undefined {
  if (!isRecord(frame) || typeof frame.channel !== "string") return undefined;
  const text = (v: unknown) => (typeof v === "string" ? v : undefined);
  return { channel: frame.channel, product: text(frame.product_id), type: text(frame.type) };
}

/** Whether a bot subscribed to `subs` receives a frame of `channel` and `product`. */
export function wants(subs: readonly Pair[], channel: string, product: string | undefined): boolean {
  return (
    subs.includes(`${channel} ${ALL_PRODUCTS}`) || (product !== undefined && subs.includes(`${channel} ${product}`))
  );
}

/**
 * One bot's outbox. The runtime gives no backpressure signal on a WebSocket (no `bufferedAmount`), so each bot is
 * delivered at most `ratePerSecond` messages a second (a token bucket, `ratePerSecond` deep); the rest wait in a
 * queue of at most `cap` messages. A bot whose queue would pass `cap` cannot keep up: `offer` says `overflow`.
 */
export class Outbox {
  readonly queue: string[] = [];
  #tokens: number;
  #at: number;
  readonly #rate: number;
  readonly #cap: number;

  constructor(ratePerSecond: number, cap: number, now: number) {
    this.#rate = ratePerSecond;
    this.#cap = cap;
    this.#tokens = ratePerSecond;
    this.#at = now;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#at) * this.#rate) / 1000);
    this.#at = now;
  }

  /** `send` now, `queued` for a later `drain`, or `overflow` (the queue is full: the bot is too slow). */
  offer(message: string, now: number): "send" | "queued" | "overflow" {
    this.#refill(now);
    if (this.queue.length === 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      return "send";
    }
    if (this.queue.length >= this.#cap) return "overflow";
    this.queue.push(message);
    return "queued";
  }

  /** The queued messages that may go now, oldest first. */
  drain(now: number): string[] {
    this.#refill(now);
    const n = Math.min(this.queue.length, Math.floor(this.#tokens));
    this.#tokens -= n;
    return this.queue.splice(0, n);
  }
}

/** Subscribe messages a bot sent in the last second, and whether one more at `now` stays within `perSecond`. */
export function withinRate(recent: number[], now: number, perSecond: number): boolean {
  while (recent.length > 0 && (recent[0] ?? 0) <= now - 1000) recent.shift();
  if (recent.length >= perSecond) return false;
  recent.push(now);
  return true;
}
