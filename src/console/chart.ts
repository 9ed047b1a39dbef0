/**
 * The clock chart: a venue's estimated offset and its uncertainty band over the last 24 h, as inline SVG drawn on the
 * server (no library). The time axis spans the history there is (at least a minute), both axes are labelled, and a
 * step (the offset moving more than the step-alert threshold from one minute to the next) is marked. Pure.
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
const H = 200;
const PAD = { left: 84, right: 12, top: 26, bottom: 38 };
const DAY_MS = 86_400_000;
const MIN_SPAN_MS = 60_000;

const fmt = (ms: number) => `${ms > 0 ? "+" : ""}${Math.round(ms)} ms`;
const clock = (t: number) => `${new Date(t).toISOString().slice(11, 16)}`;

/** The points of the last 24 h, and the steps among them: a point whose offset moved more than `stepMs`. */
function shownPoints(points: readonly ClockPoint[], now: number, stepMs: number) {
  const shown = points.filter((p) => p.minute >= now - DAY_MS && p.minute <= now);
  const steps = shown.filter((p, i) => i > 0 && Math.abs(p.offsetMs - (shown[i - 1] as ClockPoint).offsetMs) > stepMs);
  return { shown, steps };
}

/** The legend above the plot: offset, uncertainty band, and step. */
function legend(stepMs: number): Html {
  const y = 12;
  return html`<g class="legend"><line class="offset" x1="${PAD.left}" y1="${y}" x2="${PAD.left + 18}" y2="${y}"/><text x="${PAD.left + 22}" y="${y + 4}">offset</text>
<rect class="band" x="${PAD.left + 80}" y="${y - 5}" width="18" height="10"/><text x="${PAD.left + 102}" y="${y + 4}">± uncertainty</text>
<line class="step" x1="${PAD.left + 205}" y1="${y - 6}" x2="${PAD.left + 205}" y2="${y + 6}"/><text x="${PAD.left + 211}" y="${y + 4}">step (moved more than ${stepMs.toLocaleString("en-US")} ms)</text></g>`;
}

/** Offset ± uncertainty for the 24 h before `now`; a line of text when there is nothing to draw. */
export function clockChart(venue: string, points: readonly ClockPoint[], now: number, stepMs: number): Html {
  const { shown, steps } = shownPoints(points, now, stepMs);
  if (shown.length === 0) return html`<p class="muted">No clock history for ${venue} in the last 24 h yet.</p>`;
  const first = (shown[0] as ClockPoint).minute;
  const end = Math.max((shown[shown.length - 1] as ClockPoint).minute, first + MIN_SPAN_MS);
  let low = Math.min(...shown.map((p) => p.lowMs));
  let high = Math.max(...shown.map((p) => p.highMs));
  if (high - low < 2) {
    low -= 1;
    high += 1;
  }
  const bottom = H - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - first) / (end - first)) * (W - PAD.left - PAD.right);
  const y = (ms: number) => PAD.top + ((high - ms) / (high - low)) * (bottom - PAD.top);
  const pt = (t: number, ms: number) => `${x(t).toFixed(1)},${y(ms).toFixed(1)}`;
  const band = [...shown.map((p) => pt(p.minute, p.highMs)), ...[...shown].reverse().map((p) => pt(p.minute, p.lowMs))];
  const line = shown.map((p) => pt(p.minute, p.offsetMs)).join(" ");
  const last = shown[shown.length - 1] as ClockPoint;
  const stepped = steps.length > 0 ? `; ${steps.length} ${steps.length === 1 ? "step" : "steps"}` : "";
  const label = `${venue} clock offset over the last 24 h: last recorded ${fmt(last.offsetMs)} ± ${Math.round((last.highMs - last.lowMs) / 2)} ms${stepped}`;
  return html`<svg class="chart" role="img" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" aria-label="${label}">
<title>${label}</title>
${legend(stepMs)}
<line class="axis" x1="${PAD.left}" y1="${bottom}" x2="${W - PAD.right}" y2="${bottom}"/>
<line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${bottom}"/>
<polygon class="band" points="${band.join(" ")}"/>
<polyline class="offset" points="${line}"/>
${shown.length <= 60 ? shown.map((p) => html`<line class="bar" x1="${x(p.minute).toFixed(1)}" y1="${y(p.highMs).toFixed(1)}" x2="${x(p.minute).toFixed(1)}" y2="${y(p.lowMs).toFixed(1)}"/>`) : ""}
${steps.map((p) => html`<line class="step" x1="${x(p.minute).toFixed(1)}" y1="${PAD.top}" x2="${x(p.minute).toFixed(1)}" y2="${bottom}"><title>step at ${clock(p.minute)} UTC to ${fmt(p.offsetMs)}</title></line>`)}
<circle class="now" cx="${x(last.minute).toFixed(1)}" cy="${y(last.offsetMs).toFixed(1)}" r="3"/>
<text x="${PAD.left - 4}" y="${PAD.top + 8}" text-anchor="end">${fmt(high)}</text>
<text x="${PAD.left - 4}" y="${bottom}" text-anchor="end">${fmt(low)}</text>
<text class="axis-title" x="14" y="${(PAD.top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(PAD.top + bottom) / 2})">offset (ms)</text>
<text x="${PAD.left}" y="${bottom + 14}">${clock(first)}</text>
<text x="${W - PAD.right}" y="${bottom + 14}" text-anchor="end">${clock(end)}</text>
<text class="axis-title" x="${(PAD.left + W - PAD.right) / 2}" y="${H - 4}" text-anchor="middle">time (UTC)</text>
</svg>`;
}
