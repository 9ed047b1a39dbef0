// Types for parse-prometheus-text-format, the exposition-format parser the /metrics tests use (it ships none): one
// family per metric name, each sample's value as written.
declare module "parse-prometheus-text-format" {
  interface ParsedSample {
    value: string;
    labels?: Record<string, string>;
  }
  interface ParsedFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "SUMMARY" | "HISTOGRAM" | "UNTYPED";
    metrics: ParsedSample[];
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
