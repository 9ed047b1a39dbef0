/**
 * skewguard's Worker entry: the handlers for the venues in src/venues/, and the Durable Object classes its bindings
 * name. The wiring is src/worker.ts.
 */
import { DEFAULT_VENUES } from "./venues/index.ts";
import { createWorker } from "./worker.ts";

export default createWorker(DEFAULT_VENUES);

export { ClockState } from "./adapters/clock-store.ts";
export { HookLedger } from "./adapters/hook-ledger.ts";
export { MarketFeed } from "./adapters/market-feed.ts";
export { RateGate } from "./adapters/rate-gate.ts";
