// The simulator's INTX market-data feed: signed subscriptions checked against its skewed clock, confirmations,
// streams per channel and product, the 3 s subscribe deadline, and its faults.
import { beforeEach, describe, expect, it } from "vitest";
import { DEV, simControl } from "../support/sim.ts";
import { feedSignature, track } from "../support/ws.ts";

const open = async () => track(await fetch("https://ws-md.sim/ws-md", { headers: { Upgrade: "websocket" } }));

async function subscribe(offsetS: number, o: { channels?: string[]; secret?: string } = {}) {
  const state = await simControl();
  const time = String(Math.floor((Date.now() + state.skew_ms) / 1000) + offsetS);
  const secret = o.secret ?? DEV.INTX_API_SECRET;
  const signature = await feedSignature(secret, time, DEV.INTX_API_KEY, DEV.INTX_API_PASSPHRASE);
  const key = DEV.INTX_API_KEY;
  const passphrase = DEV.INTX_API_PASSPHRASE;
  const channels = o.channels ?? ["MATCH"];
  return { type: "SUBSCRIBE", channels, product_ids: ["BTC-PERP"], time, key, passphrase, signature };
}

describe("the simulator's market-data feed", () => {
  beforeEach(async () => {
    await simControl({ reset: true });
  });

  it("confirms a signed SUBSCRIBE and streams trades; the upgrade's Date is its skewed clock", async () => {
    const response = await fetch("https://ws-md.sim/ws-md", { headers: { Upgrade: "websocket" } });
    const date = Date.parse(response.headers.get("date") ?? "");
    expect(date - Date.now()).toBeGreaterThan(30_000);
    const ws = track(response);
    ws.send(await subscribe(0, { channels: ["MATCH", "LEVEL2"] }));
    const confirmed = await ws.next((f) => f.channel === "SUBSCRIPTIONS");
    expect(confirmed).toMatchObject({ authenticated: true, type: "SNAPSHOT" });
    const trade = await ws.next((f) => f.channel === "MATCH" && f.type === "UPDATE");
    expect(trade).toMatchObject({ product_id: "BTC-PERP", aggressor_side: "BUY" });
    expect(await ws.next((f) => f.channel === "LEVEL2" && f.type === "SNAPSHOT")).toHaveProperty("bids");
    expect((await simControl()).ws_md).toMatchObject({ connections: 1, open: 1, subscribes: 1 });
    ws.socket.close();
  });

  it("rejects a time 31 s off its clock, or a wrong signature, and closes", async () => {
    for (const sub of [await subscribe(-31), await subscribe(0, { secret: btoa("wrong") })]) {
      const ws = await open();
      ws.send(sub);
      expect(await ws.next((f) => f.type === "REJECT")).toMatchObject({ reason: "Unable to authenticate" });
      expect((await ws.closing()).code).toBe(1008);
    }
    expect((await simControl()).ws_md?.rejected).toBe(2);
  });

  it("closes a connection that has not subscribed within 3 s", async () => {
    const ws = await open();
    expect((await ws.closing(5000)).reason).toBe("no subscription");
  });

  it("ws_stall silences, ws_close closes, ws_refuse refuses the next upgrade", async () => {
    const ws = await open();
    ws.send(await subscribe(0));
    await ws.next((f) => f.channel === "MATCH");
    await simControl({ ws_fault: { kind: "ws_stall" } });
    await new Promise((r) => setTimeout(r, 300));
    const count = ws.frames.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(ws.frames.length).toBe(count);
    await simControl({ ws_fault: { kind: "ws_close" } });
    expect((await ws.closing()).code).toBe(1011);
    await simControl({ ws_fault: { kind: "ws_refuse" } });
    expect((await fetch("https://ws-md.sim/ws-md", { headers: { Upgrade: "websocket" } })).status).toBe(503);
    expect((await simControl()).ws_md).toMatchObject({ open: 0, refused: 1 });
  });
});
