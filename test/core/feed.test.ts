// The market-data feed's pure rules (src/core/feed.ts): what a bot may send, the pairs it names, the reference
// counts behind the one upstream subscription, who receives a frame, the bounded outbox and the subscribe rate.
import { describe, expect, it } from "vitest";
import { Outbox, PairCounts, parseBotMessage, subscriptionMessages, wants, withinRate } from "../../src/core/feed.ts";
import { parseFeed } from "../../src/core/venue-config.ts";
import { cde } from "../../src/venues/cde.ts";
import { intx } from "../../src/venues/intx.ts";

describe("a bot's message", () => {
  it("a SUBSCRIBE loses its credential fields and keeps the rest; its pairs are channels × products", () => {
    const text = JSON.stringify({
      type: "SUBSCRIBE",
      channels: ["MATCH", "LEVEL2"],
      product_ids: ["BTC-PERP", "ETH-PERP"],
      key: "k",
      passphrase: "p",
      time: "1",
      signature: "s",
      extra: 1,
    });
    const parsed = parseBotMessage(text);
    expect(parsed).toEqual({
      kind: "subscribe",
      rest: { type: "SUBSCRIBE", channels: ["MATCH", "LEVEL2"], product_ids: ["BTC-PERP", "ETH-PERP"], extra: 1 },
      pairs: ["MATCH BTC-PERP", "MATCH ETH-PERP", "LEVEL2 BTC-PERP", "LEVEL2 ETH-PERP"],
    });
  });

  it("without product_ids a channel is subscribed whole (*)", () => {
    expect(parseBotMessage('{"type":"UNSUBSCRIBE","channels":["INSTRUMENTS"]}')).toMatchObject({
      kind: "unsubscribe",
      pairs: ["INSTRUMENTS *"],
    });
  });

  it("anything else is refused", () => {
    for (const text of [
      "nope",
      "[]",
      '{"type":"ORDER"}',
      '{"type":"SUBSCRIBE"}',
      '{"type":"toString","channels":["A"]}',
    ]) {
      expect(parseBotMessage(text)).toHaveProperty("error");
    }
  });
});

describe("reference counts and routing", () => {
  it("a pair is new on its first bot and gone with its last", () => {
    const counts = new PairCounts();
    expect(counts.add(["MATCH BTC-PERP"])).toEqual(["MATCH BTC-PERP"]);
    expect(counts.add(["MATCH BTC-PERP", "LEVEL1 *"])).toEqual(["LEVEL1 *"]);
    expect(counts.remove(["MATCH BTC-PERP"])).toEqual([]);
    expect(counts.remove(["MATCH BTC-PERP", "LEVEL1 *", "LEVEL2 X"])).toEqual(["MATCH BTC-PERP", "LEVEL1 *"]);
    expect(counts.pairs()).toEqual([]);
  });

  it("upstream messages group products per channel, * without product_ids", () => {
    expect(subscriptionMessages("subscribe", ["MATCH BTC-PERP", "MATCH ETH-PERP", "INSTRUMENTS *"])).toEqual([
      { type: "SUBSCRIBE", channels: ["MATCH"], product_ids: ["BTC-PERP", "ETH-PERP"] },
      { type: "SUBSCRIBE", channels: ["INSTRUMENTS"] },
    ]);
    expect(subscriptionMessages("unsubscribe", ["LEVEL2 SOL-PERP"])).toEqual([
      { type: "UNSUBSCRIBE", channels: ["LEVEL2"], product_ids: ["SOL-PERP"] },
    ]);
  });

  it("a bot receives a frame of a pair it holds, or of a channel it holds whole", () => {
    expect(wants(["MATCH BTC-PERP"], "MATCH", "BTC-PERP")).toBe(true);
    expect(wants(["MATCH BTC-PERP"], "MATCH", "ETH-PERP")).toBe(false);
    expect(wants(["MATCH BTC-PERP"], "LEVEL1", "BTC-PERP")).toBe(false);
    expect(wants(["INSTRUMENTS *"], "INSTRUMENTS", "ETH-PERP")).toBe(true);
    expect(wants(["MATCH BTC-PERP"], "MATCH", undefined)).toBe(false);
  });
});

describe("a bot's outbox and subscribe rate", () => {
  it("sends at once within its rate, queues beyond it, and overflows past its cap", () => {
    const box = new Outbox(2, 2, 0);
    expect(["a", "b", "c", "d", "e"].map((m) => box.offer(m, 0))).toEqual([
      "send",
      "send",
      "queued",
      "queued",
      "overflow",
    ]);
    expect(box.drain(500)).toEqual(["c"]);
    expect(box.drain(1000)).toEqual(["d"]);
    expect(box.offer("f", 1000)).toBe("queued");
  });

  it("counts subscribe messages in a rolling second", () => {
    const recent: number[] = [];
    expect([0, 100, 200].map((t) => withinRate(recent, t, 2))).toEqual([true, true, false]);
    expect(withinRate(recent, 1001, 2)).toBe(true);
  });
});

describe("the feed's settings", () => {
  it("default to the profile's feed; ws:// only on loopback; a venue without a feed has none", () => {
    expect(parseFeed({}, intx)).toMatchObject({
      url: "wss://ws-md.international.coinbase.com/",
      signingWord: "CBINTLMD",
      maxBots: 100,
      stallMs: 30_000,
    });
    expect(parseFeed({ INTX_WS_URL: "ws://127.0.0.1:8788/ws-md" }, intx)?.url).toBe("ws://127.0.0.1:8788/ws-md");
    expect(() => parseFeed({ INTX_WS_URL: "ws://feed.example/" }, intx)).toThrow(/wss:\/\//);
    expect(() => parseFeed({ INTX_WS_URL: "wss://u:p@feed.example/" }, intx)).toThrow(/credentials/);
    expect(() => parseFeed({ INTX_WS_MAX_BOTS: "0" }, intx)).toThrow(/INTX_WS_MAX_BOTS/);
    expect(parseFeed({}, cde)).toBeUndefined();
  });
});
