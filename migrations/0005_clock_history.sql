-- Clock history: at most one row a minute per venue of the shared clock estimate (the `ClockState` Durable Object
-- writes it when an offer arrives), so an operator can see offset ± uncertainty over time. Pruned with the rest.
CREATE TABLE clock_history (
  venue TEXT NOT NULL,
  minute INTEGER NOT NULL, -- local epoch ms of the minute's start
  offset_ms REAL NOT NULL,
  low_ms REAL NOT NULL,
  high_ms REAL NOT NULL,
  samples INTEGER NOT NULL,
  PRIMARY KEY (venue, minute)
);
