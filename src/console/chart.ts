/**
 * The clock chart: a venue's estimated offset and its uncertainty band over the last 24 h, as inline SVG drawn on the
 * server (no script, no library). Pure.
 */
import { type Html, html } from "./html.ts";

export interface ClockPoint {
  /** Epoch ms of the minute. */
  minute: number;
  offsetMs: number;
  lowMs: number;
  highMs: number;
}

const W = 720;
const H = 160;
const PAD = { left: 84, right: 8, top: 10, bottom: 22 };
const DAY_MS = 86_400_000;

const fmt = (ms: number) => `${ms > 0 ? "+" : ""}${Math.round(ms)} ms`;

/** Offset ± uncertainty for the 24 h before `now`; a line of text when there is nothing to draw. */
export function clockChart(venue: string, points: readonly ClockPoint[], now: number): Html {
  const shown = points.filter((p) => p.minute >= now - DAY_MS && p.minute <= now);
  if (shown.length === 0) return html`<p class="muted">No clock history for ${venue} in the last 24 h yet.</p>`;
  let low = Math.min(...shown.map((p) => p.lowMs));
  let high = Math.max(...shown.map((p) => p.highMs));
  if (high - low < 2) {
    low -= 1;
    high += 1;
  }
  const x = (t: number) => PAD.left + ((t - (now - DAY_MS)) / DAY_MS) * (W - PAD.left - PAD.right);
  const y = (ms: number) => PAD.top + ((high - ms) / (high - low)) * (H - PAD.top - PAD.bottom);
  const pt = (t: number, ms: number) => `${x(t).toFixed(1)},${y(ms).toFixed(1)}`;
  const band = [...shown.map((p) => pt(p.minute, p.highMs)), ...[...shown].reverse().map((p) => pt(p.minute, p.lowMs))];
  const line = shown.map((p) => pt(p.minute, p.offsetMs)).join(" ");
  const last = shown[shown.length - 1] as ClockPoint;
  const label = `${venue} clock offset over the last 24 h: last recorded ${fmt(last.offsetMs)} ± ${Math.round((last.highMs - last.lowMs) / 2)} ms`;
  return html`<svg class="chart" role="img" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" aria-label="${label}">
<title>${label}</title>
<line class="axis" x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}"/>
<polygon class="band" points="${band.join(" ")}"/>
<polyline class="offset" points="${line}"/>
${shown.length <= 60 ? shown.map((p) => html`<line class="bar" x1="${x(p.minute).toFixed(1)}" y1="${y(p.highMs).toFixed(1)}" x2="${x(p.minute).toFixed(1)}" y2="${y(p.lowMs).toFixed(1)}"/>`) : ""}
<circle class="now" cx="${x(last.minute).toFixed(1)}" cy="${y(last.offsetMs).toFixed(1)}" r="3"/>
<text x="${PAD.left - 4}" y="${PAD.top + 8}" text-anchor="end">${fmt(high)}</text>
<text x="${PAD.left - 4}" y="${H - PAD.bottom}" text-anchor="end">${fmt(low)}</text>
<text x="${PAD.left}" y="${H - 6}">24 h ago</text>
<text x="${W - PAD.right}" y="${H - 6}" text-anchor="end">now</text>
</svg>`;
}
