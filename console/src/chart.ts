// Bar charts drawn as SVG (no library, nothing inline for the CSP to refuse): calls per day
// and per operation, with the failed part of each bar in the error colour. Each chart's
// figures are also a table behind a disclosure, for the keyboard and screen readers that
// cannot reach an SVG's tooltips.

import { h, svg } from "./dom";
import { table } from "./ui";

export interface Bar {
  label: string;
  total: number;
  errors: number;
}

export function columns(title: string, bars: Bar[]): HTMLElement {
  const width = 640;
  const height = 180;
  const pad = 28;
  const max = Math.max(1, ...bars.map((b) => b.total));
  const slot = bars.length ? (width - pad) / bars.length : 0;
  const bw = Math.max(2, Math.min(40, slot * 0.7));
  const y = (n: number) => height - pad - ((height - 2 * pad) * n) / max;
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" },
    svg("line", { x1: pad, y1: height - pad, x2: width, y2: height - pad, class: "axis" }),
    svg("text", { x: 2, y: y(max) + 4, class: "tick" }, String(max)),
    bars.map((b, i) => {
      const x = pad + i * slot + (slot - bw) / 2;
      const ok = b.total - b.errors;
      return svg(
        "g",
        null,
        svg("title", null, `${b.label}: ${b.total} calls, ${b.errors} failed`),
        svg("rect", { x, y: y(ok), width: bw, height: y(0) - y(ok), class: "bar-ok" }),
        b.errors ? svg("rect", { x, y: y(b.total), width: bw, height: y(ok) - y(b.total), class: "bar-error" }) : null,
        i % Math.ceil(bars.length / 8) === 0
          ? svg("text", { x: x + bw / 2, y: height - pad + 14, class: "tick", "text-anchor": "middle" }, b.label.slice(5))
          : null,
      );
    }),
  );
  return figure(title, chart, bars);
}

function figure(title: string, chart: SVGElement, bars: Bar[]): HTMLElement {
  return h(
    "figure",
    { class: "chart-box" },
    h("figcaption", null, title),
    chart,
    h(
      "details",
      { class: "chart-figures" },
      h("summary", null, "Figures"),
      table(["", "Calls", "Failed"], bars.map((b) => [b.label, String(b.total), String(b.errors)])),
    ),
  );
}

export function rows(title: string, bars: Bar[]): HTMLElement {
  const max = Math.max(1, ...bars.map((b) => b.total));
  const rowH = 20;
  const labelW = 220;
  const width = 640;
  const height = Math.max(rowH, bars.length * rowH);
  const scale = (n: number) => ((width - labelW - 60) * n) / max;
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" },
    bars.map((b, i) => {
      const yTop = i * rowH + 3;
      const ok = b.total - b.errors;
      return svg(
        "g",
        null,
        svg("title", null, `${b.label}: ${b.total} calls, ${b.errors} failed`),
        svg("text", { x: labelW - 6, y: yTop + 12, class: "tick", "text-anchor": "end" }, b.label),
        svg("rect", { x: labelW, y: yTop, width: scale(ok), height: rowH - 6, class: "bar-ok" }),
        b.errors ? svg("rect", { x: labelW + scale(ok), y: yTop, width: scale(b.errors), height: rowH - 6, class: "bar-error" }) : null,
        svg("text", { x: labelW + scale(b.total) + 6, y: yTop + 12, class: "tick" }, b.errors ? `${b.total} (${b.errors} failed)` : String(b.total)),
      );
    }),
  );
  return figure(title, chart, bars);
}

/** Counts by a label, failed ones apart. */
export function tally<T>(items: T[], label: (t: T) => string, failed: (t: T) => boolean): Bar[] {
  const m = new Map<string, Bar>();
  for (const it of items) {
    const l = label(it);
    const b = m.get(l) ?? { label: l, total: 0, errors: 0 };
    b.total++;
    if (failed(it)) b.errors++;
    m.set(l, b);
  }
  return [...m.values()];
}
