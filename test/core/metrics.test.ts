// GET /metrics's pure parts: the route template a request is counted under (never an id, a name or a venue path),
// the per-isolate counters, and the text exposition format, read back by a real parser of it, escapes included.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { Counter, EXPOSITION_TYPE, exposition, IsolateMetrics, routeTemplate } from "../../src/core/metrics.ts";

describe("route templates", () => {
  const names = { venues: new Set(["intx", "cde"]), feeds: new Set(["intx"]) };
  it.each([
    ["/metrics", "/metrics"],
    ["/console/login", "/console/login"],
    ["/alerts/test", "/alerts/test"],
    ["/intx/api/v1/orders/123", "/intx/*"],
    ["/intx/ws", "/intx/ws"],
    ["/intx/alpha/ws", "/intx/:account/ws"],
    ["/cde/alpha/ws", "/cde/*"],
    ["/hooks/tv", "/hooks/:name"],
    ["/accounts/intx/alpha/halt", "/accounts/:venue/:account/halt"],
    ["/jobs/pnl/runs", "/jobs/:name/runs"],
    ["/deliveries/abc", "/deliveries/:id"],
    ["/deliveries/abc/retry", "/deliveries/:id/retry"],
    ["/console/halt", "/console/:action"],
    ["/secret/token-in-path", "other"],
    ["/", "other"],
  ])("%s is counted as %s", (path, template) => {
    expect(routeTemplate(path, names)).toBe(template);
  });
});

describe("counters and the exposition format", () => {
  it("adds per label set, and a parser reads every family back with its type and values", () => {
    const metrics = new IsolateMetrics();
    metrics.requests.inc("/intx/*", "200");
    metrics.requests.inc("/intx/*", "200");
    metrics.requests.inc("/hooks/:name", "404");
    metrics.gateWaitSeconds.inc("intx", "alpha", "", 0.25);
    const parsed = parsePrometheusTextFormat(exposition(metrics.families()));
    expect(parsed.map((f) => f.name)).toEqual(metrics.families().map((f) => f.name));
    const requests = parsed.find((f) => f.name === "skewguard_requests_total");
    expect(requests?.type).toBe("COUNTER");
    expect(requests?.metrics).toEqual([
      { labels: { route: "/intx/*", status: "200" }, value: "2" },
      { labels: { route: "/hooks/:name", status: "404" }, value: "1" },
    ]);
    const seconds = parsed.find((f) => f.name === "skewguard_gate_wait_seconds_total");
    expect(seconds?.metrics).toEqual([{ labels: { venue: "intx", account: "alpha" }, value: "0.25" }]);
    expect(EXPOSITION_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });

  it("escapes label values and help text, and writes NaN and infinities as the format spells them", () => {
    const counter = new Counter("x_total", 'a "help"\\ with\na newline', ["name"]);
    counter.inc('quote " backslash \\ newline \n end');
    const text = exposition([
      counter.family(),
      { name: "y", type: "gauge", help: "h", samples: [{ labels: {}, value: Number.POSITIVE_INFINITY }] },
      { name: "z", type: "gauge", help: "h", samples: [{ labels: {}, value: Number.NaN }] },
    ]);
    const [x, y, z] = parsePrometheusTextFormat(text);
    expect(x?.help).toBe('a "help"\\ with\na newline');
    expect(x?.metrics[0]?.labels).toEqual({ name: 'quote " backslash \\ newline \n end' });
    expect(y?.metrics[0]?.value).toBe("+Inf");
    expect(z?.metrics[0]?.value).toBe("NaN");
    expect(text.endsWith("\n")).toBe(true);
  });
});
