/**
 * `MarketFeed`, one Durable Object per venue account: the market-data feed relay (docs/websocket.md). It accepts
 * bots with the WebSocket hibernation API and keeps ONE upstream connection to the venue's feed, however many bots
 * are connected. A bot's `SUBSCRIBE`/`UNSUBSCRIBE` goes upstream with the account's key and passphrase, the venue's
 * time from the learned clock and a fresh signature; subscriptions are reference-counted per (channel, product)
 * (core/feed.ts), each bot receives only what it subscribed to, and a bot that cannot keep up is closed alone. The
 * upstream is reconnected with backoff when it closes or stalls, everything is re-subscribed, and every bot is told.
 * No frame that contains a credential reaches a bot. The account's halt does not apply: market data is not trading.
 */
import { DurableObject } from "cloudflare:workers";
import {
  type BotMessage,
  frameTopic,
  Outbox,
  type Pair,
  PairCounts,
  parseBotMessage,
  subscriptionMessages,
  wants,
  withinRate,
} from "../core/feed.ts";
import { accountKey, type FeedSettings, type VenueConfig } from "../core/venue-config.ts";
import { sampleFromResponse } from "../lib/date.ts";
import { timestampFor } from "../lib/estimator.ts";
import { importHmacKey, type SecretEncoding, secretBytes } from "../lib/key.ts";
import { subscriptionSignature } from "../lib/sign.ts";
import { config, runtime } from "../runtime.ts";
import { feedClock } from "./client.ts";
import { errorName, log } from "./log.ts";
import type { VenueClock } from "./venue-clock.ts";

/** What the Worker hands its account's feed object before each bot joins: the account's feed configuration. */
export interface FeedSetup {
  venue: string;
  account: string;
  baseUrl: string;
  feed: FeedSettings;
  apiKey: string;
  secret: string;
  passphrase: string;
  secretEncoding: SecretEncoding;
}

/** Each bot's socket attachment (kept across hibernation): its account, who it is and what it subscribed to. */
interface Bot {
  venue: string;
  account: string;
  token: string;
  subs: Pair[];
  left?: boolean;
}

/** A bot's in-memory side: its outbox and its recent subscribe messages. */
interface Live {
  outbox: Outbox;
  recent: number[];
}

export type UpstreamState = "idle" | "connecting" | "open" | "backoff";

/** The feed's state for `/health`: no credential, no subscription detail beyond counts. */
export interface FeedStatus {
  upstream: UpstreamState;
  bots: number;
  subscriptions: number;
  last_message_age_ms: number | null;
  messages_in: number;
  messages_out: number;
  reconnects: number;
  bots_cut: number;
  frames_dropped: number;
}

const TICK_MS = 100;
const BACKOFF_MS = [250, 500, 1_000, 2_000, 5_000, 10_000];
const SIGNATURES_KEPT = 20;

const attachment = (ws: WebSocket): Bot => ws.deserializeAttachment() as Bot;

export class MarketFeed extends DurableObject<Env> {
  #setup: FeedSetup | undefined;
  #key: Promise<CryptoKey> | undefined;
  #clock: VenueClock | undefined;
  #upstream: WebSocket | undefined;
  #state: UpstreamState = "idle";
  #attempt = 0;
  #lastMessageAt: number | undefined;
  readonly #counts = new PairCounts();
  /** Each connected bot's attachment, read once (the attachment is the copy that survives hibernation). */
  readonly #bots = new Map<WebSocket, Bot>();
  readonly #live = new Map<WebSocket, Live>();
  readonly #signatures: string[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #sending: Promise<void> = Promise.resolve();
  readonly #stats = { in: 0, out: 0, reconnects: 0, cut: 0, dropped: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    for (const ws of ctx.getWebSockets()) {
      const bot = attachment(ws);
      if (bot.left) continue;
      this.#bots.set(ws, bot);
      this.#counts.add(bot.subs);
    }
  }

  /** The account's configuration, from the Worker (it holds the bindings the request was served with). */
  prepare(setup: FeedSetup): void {
    if (this.#setup?.apiKey !== setup.apiKey) this.#key = undefined;
    this.#setup = setup;
  }

  status(): FeedStatus {
    const now = Date.now();
    return {
      upstream: this.#state,
      bots: this.#bots.size,
      subscriptions: this.#counts.pairs().length,
      last_message_age_ms: this.#lastMessageAt === undefined ? null : now - this.#lastMessageAt,
      messages_in: this.#stats.in,
      messages_out: this.#stats.out,
      reconnects: this.#stats.reconnects,
      bots_cut: this.#stats.cut,
      frames_dropped: this.#stats.dropped,
    };
  }

  /** A bot's upgrade (the Worker authenticated it): accepted, or 503 over the cap of bots. */
  override async fetch(request: Request): Promise<Response> {
    const setup = this.#setup;
    if (!setup)
      return Response.json({ code: "feed_unavailable", message: "the feed is not configured" }, { status: 503 });
    if (this.#bots.size >= setup.feed.maxBots) {
      const message = `this account's feed already has ${setup.feed.maxBots} bots connected`;
      return Response.json({ code: "too_many_bots", message }, { status: 503 });
    }
    const pair = new WebSocketPair();
    const token = request.headers.get("x-skewguard-token") ?? "";
    this.ctx.acceptWebSocket(pair[1], [`token:${token}`]);
    this.#write(pair[1], { venue: setup.venue, account: setup.account, token, subs: [] });
    this.#startTimer();
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    const parsed = parseBotMessage(text);
    const refusal = "error" in parsed ? parsed.error : this.#refusal(ws);
    if (refusal !== undefined) this.#tell(ws, "error", { message: refusal });
    else if (!("error" in parsed)) {
      if (parsed.kind === "subscribe") this.#subscribe(ws, parsed);
      else this.#unsubscribe(ws, parsed);
    }
  }

  /** Why a bot's (well-formed) subscription message is not taken now: no configuration, or over its rate. */
  #refusal(ws: WebSocket): string | undefined {
    const feed = this.#recover(ws)?.feed;
    if (!feed) return "the feed is not configured; reconnect";
    if (withinRate(this.#liveOf(ws, feed).recent, Date.now(), feed.subscribesPerSecond)) return undefined;
    return `more than ${feed.subscribesPerSecond} subscribe messages a second`;
  }

  override webSocketClose(ws: WebSocket): void {
    this.#leave(ws);
  }

  override webSocketError(ws: WebSocket): void {
    this.#leave(ws);
  }

  /**
   * The configuration, which an object woken from hibernation has lost: read again from its own bindings, for the
   * account the bot's attachment names (the Worker's and the object's bindings are the same once deployed).
   */
  #recover(ws: WebSocket): FeedSetup | undefined {
    if (this.#setup) return this.#setup;
    const { venue, account } = attachment(ws);
    const venueConfig = config(this.env).accounts.get(accountKey(venue, account));
    if (venueConfig) this.#setup = feedSetup(venueConfig);
    return this.#setup;
  }

  /** Keeps a bot's attachment, in memory and on its socket; a bot that left is forgotten. */
  #write(ws: WebSocket, bot: Bot): void {
    ws.serializeAttachment(bot);
    if (bot.left) this.#bots.delete(ws);
    else this.#bots.set(ws, bot);
  }

  /** A bot's attachment (a socket that already left reads as one without subscriptions). */
  #bot(ws: WebSocket): Bot {
    return this.#bots.get(ws) ?? attachment(ws);
  }

  #liveOf(ws: WebSocket, feed: FeedSettings): Live {
    let live = this.#live.get(ws);
    if (!live) {
      live = { outbox: new Outbox(feed.botRate, feed.botQueue, Date.now()), recent: [] };
      this.#live.set(ws, live);
    }
    return live;
  }

  /** A skewguard message of its own to one bot: `{"type": "SKEWGUARD", "event": …}`. */
  #tell(ws: WebSocket, event: string, fields: Record<string, unknown> = {}): void {
    try {
      ws.send(JSON.stringify({ type: "SKEWGUARD", event, ...fields, time: new Date().toISOString() }));
    } catch {
      this.#leave(ws);
    }
  }

  #subscribe(ws: WebSocket, message: BotMessage): void {
    const bot = this.#bot(ws);
    const added = message.pairs.filter((p) => !bot.subs.includes(p));
    this.#write(ws, { ...bot, subs: [...bot.subs, ...added] });
    this.#counts.add(added);
    this.#confirm(ws);
    // Sent upstream even when every pair is already subscribed: the venue answers with fresh snapshots, which a
    // joining bot needs to build its book (the others reset theirs, as after any snapshot).
    if (this.#state === "open") this.#sendUpstream(message.rest);
    else this.#connectSoon();
  }

  #unsubscribe(ws: WebSocket, message: BotMessage): void {
    const bot = this.#bot(ws);
    const removed = message.pairs.filter((p) => bot.subs.includes(p));
    this.#write(ws, { ...bot, subs: bot.subs.filter((p) => !removed.includes(p)) });
    this.#drop(this.#counts.remove(removed));
    this.#confirm(ws);
  }

  /** The bot's own subscriptions, in the venue's `SUBSCRIPTIONS` shape (the upstream's list is every bot's). */
  #confirm(ws: WebSocket): void {
    const byChannel = new Map<string, string[]>();
    for (const pair of this.#bot(ws).subs) {
      const [channel = "", product = ""] = pair.split(" ");
      byChannel.set(channel, [...(byChannel.get(channel) ?? []), product]);
    }
    const channels = [...byChannel].map(([name, ids]) => ({ name, product_ids: ids.filter((p) => p !== "*") }));
    const time = new Date().toISOString();
    this.#deliver(
      ws,
      JSON.stringify({ channels, authenticated: true, channel: "SUBSCRIPTIONS", type: "SNAPSHOT", time }),
    );
  }

  /** Unsubscribes upstream the pairs no bot wants any more. */
  #drop(gone: Pair[]): void {
    if (gone.length === 0 || this.#state !== "open") return;
    for (const m of subscriptionMessages("unsubscribe", gone)) this.#sendUpstream(m);
  }

  #leave(ws: WebSocket): void {
    const bot = this.#bot(ws);
    if (bot.left) return;
    this.#write(ws, { ...bot, subs: [], left: true });
    this.#live.delete(ws);
    this.#drop(this.#counts.remove(bot.subs));
    if (this.#bots.size === 0) this.#closeUpstream("no bots");
  }

  /** A bot that cannot keep up: closed with a reason, alone. */
  #cut(ws: WebSocket, queue: number): void {
    this.#stats.cut++;
    log("warn", { event: "feed_bot_cut", account: this.#setup?.account, token: this.#bot(ws).token, queue });
    try {
      ws.close(1008, `too slow: more than ${queue} messages waiting`);
    } catch {
      // already closed
    }
    this.#leave(ws);
  }

  #deliver(ws: WebSocket, text: string): void {
    const setup = this.#setup;
    if (!setup) return;
    const live = this.#liveOf(ws, setup.feed);
    const verdict = live.outbox.offer(text, Date.now());
    if (verdict === "overflow") this.#cut(ws, setup.feed.botQueue);
    else if (verdict === "send") this.#send(ws, text);
  }

  #send(ws: WebSocket, text: string): void {
    try {
      ws.send(text);
      this.#stats.out++;
    } catch {
      this.#leave(ws);
    }
  }

  #startTimer(): void {
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
  }

  /** Drains each bot's outbox, and replaces an upstream that has been silent for the stall time. */
  #tick(): void {
    const now = Date.now();
    for (const [ws, live] of this.#live) for (const text of live.outbox.drain(now)) this.#send(ws, text);
    const stall = this.#setup?.feed.stallMs ?? Number.POSITIVE_INFINITY;
    if (this.#state === "open" && this.#lastMessageAt !== undefined && now - this.#lastMessageAt > stall) {
      log("warn", { event: "feed_stalled", account: this.#setup?.account, silent_ms: now - this.#lastMessageAt });
      this.#lost(this.#upstream);
    }
    if (this.#bots.size === 0 && this.#state === "idle" && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #connectSoon(): void {
    if (this.#state === "idle") void this.#connect();
  }

  async #connect(): Promise<void> {
    const setup = this.#setup;
    if (!setup || this.#bots.size === 0) {
      this.#state = "idle";
      return;
    }
    this.#state = "connecting";
    try {
      const ws = await this.#open(setup);
      this.#upstream = ws;
      this.#state = "open";
      this.#lastMessageAt = Date.now();
      for (const m of subscriptionMessages("subscribe", this.#counts.pairs())) this.#sendUpstream(m);
      if (this.#attempt > 0)
        for (const bot of this.#bots.keys()) this.#tell(bot, "reconnected", { attempts: this.#attempt });
      this.#attempt = 0;
    } catch (err) {
      log("warn", { event: "feed_connect_failed", account: setup.account, error: errorName(err) });
      this.#lost(undefined, true);
    }
  }

  /**
   * Opens the upstream connection; the upgrade answer's `Date` teaches the venue clock. A redirect is never followed:
   * the account's key and passphrase go to this connection next, so only the configured host may have them.
   */
  async #open(setup: FeedSetup): Promise<WebSocket> {
    this.#clock ??= await feedClock(this.env, setup.venue, setup.baseUrl);
    const tSend = Date.now();
    const url = setup.feed.url.replace(/^ws/, "http");
    const response = await fetch(url, { headers: { Upgrade: "websocket" }, redirect: "manual" });
    const ws = response.webSocket;
    if (!ws) throw new Error(`the feed refused the upgrade: ${response.status}`);
    this.#clock.observe(sampleFromResponse(response.headers, tSend, Date.now()));
    ws.accept();
    ws.addEventListener("message", (event) => this.#fromUpstream(ws, event.data));
    ws.addEventListener("close", () => this.#lost(ws));
    ws.addEventListener("error", () => this.#lost(ws));
    return ws;
  }

  /** The upstream closed, failed or stalled (or never opened): reconnect with backoff while bots remain. */
  #lost(ws: WebSocket | undefined, failedToOpen = false): void {
    if (!failedToOpen && (ws === undefined || ws !== this.#upstream)) return;
    this.#closeUpstream("replaced");
    if (this.#bots.size === 0) return;
    const delay = BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)] ?? 10_000;
    this.#attempt++;
    this.#stats.reconnects++;
    this.#state = "backoff";
    setTimeout(() => void this.#connect(), delay * (0.75 + Math.random() / 2));
  }

  #closeUpstream(reason: string): void {
    const ws = this.#upstream;
    this.#upstream = undefined;
    this.#state = "idle";
    try {
      ws?.close(1000, reason);
    } catch {
      // already closed
    }
  }

  #fromUpstream(ws: WebSocket, data: string | ArrayBuffer): void {
    if (ws !== this.#upstream) return;
    this.#lastMessageAt = Date.now();
    this.#stats.in++;
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    if (this.#holdsCredential(text)) {
      this.#stats.dropped++;
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#stats.dropped++;
      return;
    }
    const topic = frameTopic(frame);
    // The venue's own SUBSCRIPTIONS list is every bot's: each bot had its own. A refusal goes to every bot.
    const refusal = topic?.channel === "SUBSCRIPTIONS" && topic.type === "REJECT";
    if (topic?.channel === "SUBSCRIPTIONS" && !refusal) return;
    for (const [ws, bot] of this.#bots) {
      if (refusal || !topic || wants(bot.subs, topic.channel, topic.product)) this.#deliver(ws, text);
    }
  }

  /** Whether an upstream frame contains the account's key, passphrase or a signature skewguard sent. */
  #holdsCredential(text: string): boolean {
    const setup = this.#setup;
    if (!setup) return true;
    return (
      text.includes(setup.apiKey) ||
      text.includes(setup.passphrase) ||
      this.#signatures.some((signature) => text.includes(signature))
    );
  }

  /** Signs and sends one subscription message upstream, in order. */
  #sendUpstream(rest: Record<string, unknown>): void {
    this.#sending = this.#sending
      .then(() => this.#signAndSend(rest))
      .catch((err: unknown) =>
        log("error", { event: "feed_send_failed", account: this.#setup?.account, error: errorName(err) }),
      );
  }

  async #signAndSend(rest: Record<string, unknown>): Promise<void> {
    const setup = this.#setup;
    const ws = this.#upstream;
    if (!setup || !ws) return;
    this.#key ??= importHmacKey(secretBytes(setup.secret, setup.secretEncoding, "feed secret"));
    const identity = { apiKey: setup.apiKey, passphrase: setup.passphrase, key: await this.#key };
    const now = Date.now();
    const time = timestampFor(now, this.#clock?.estimator.estimate(now));
    const signature = await subscriptionSignature(identity, time, setup.feed.signingWord);
    this.#signatures.push(signature);
    if (this.#signatures.length > SIGNATURES_KEPT) this.#signatures.shift();
    const credentials = { key: setup.apiKey, passphrase: setup.passphrase, time: String(time), signature };
    if (ws === this.#upstream) ws.send(JSON.stringify({ ...rest, ...credentials }));
  }
}

/** An account's feed object. */
export function feedObject(env: Env, venue: string, account: string) {
  const shared = runtime(env);
  const id = shared.objectId(env.MARKET_FEED, "feed", accountKey(venue, account));
  return env.MARKET_FEED.get(id, shared.config.durableObjects);
}

/** What an account's feed object needs of its configuration; undefined when the venue has no usable feed. */
export function feedSetup(venueConfig: VenueConfig): FeedSetup | undefined {
  const { profile, account, feed, baseUrl, credentials, secretEncoding } = venueConfig;
  if (!feed) return undefined;
  const { apiKey, secret, passphrase } = credentials;
  return { venue: profile.name, account, baseUrl, feed, apiKey, secret, passphrase, secretEncoding };
}
