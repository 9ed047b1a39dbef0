// The library in Node, imported as a user would ("skewguard", resolved through package.json exports to dist/lib):
// a CoinbaseClient against the simulator (in workerd, its clock 37.25 s ahead) is refused once for its timestamp,
// learns from that refusal, and then lands every request, orders included.
import { CoinbaseClient, signedWithOf } from "skewguard";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_VARS, type LocalWorker, startLocal } from "./local-worker.ts";

let local: LocalWorker;

beforeAll(async () => {
  local = await startLocal({}, { directSockets: true });
  await local.simControl({ reset: true, skew_ms: 37_250 });
}, 60_000);

afterAll(async () => {
  await local?.stop();
});

describe("CoinbaseClient in Node against the simulator", () => {
  it("one timestamp refusal on a 37 s skew, then none, for reads and an order", async () => {
    const sim = local.direct.sim as string;
    const client = new CoinbaseClient({
      apiKey: DEV_VARS.INTX_API_KEY as string,
      secret: DEV_VARS.INTX_API_SECRET as string,
      passphrase: DEV_VARS.INTX_API_PASSPHRASE as string,
    });
    const first = await client.fetch(`${sim}/api/v1/portfolios`);
    expect(first.status).toBe(200);
    expect(signedWithOf(first)?.attempts).toBe(2);
    const order = await client.fetch(`${sim}/api/v1/orders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_order_id: crypto.randomUUID(),
        side: "BUY",
        size: "0.01",
        tif: "IOC",
        type: "MARKET",
        instrument: "BTC-PERP",
      }),
    });
    expect(order.status).toBe(200);
    expect(signedWithOf(order)?.attempts).toBe(1);
    expect(Math.abs((signedWithOf(order)?.estimate?.offsetMs ?? 0) - 37_250)).toBeLessThan(1_100);
    const effects = (await local.simControl()).effects as { rejected: Record<string, number>; orders_placed: number };
    expect(effects.rejected).toEqual({ timestamp_window: 1 });
    expect(effects.orders_placed).toBe(1);
  });
});
