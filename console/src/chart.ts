// Line charts of metric series, drawn by uPlot (bundled, ~50 kB; no network at run time).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";
import type { MetricPoint } from "./types";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

/** A chart of `series` (name -> points) against step, in a <figure> titled `title`; a short
 * note instead when none of them has points yet. */
export function lineChart(
  title: string,
  id: string,
  series: Record<string, MetricPoint[]>,
  width: number,
): HTMLElement {
  const names = Object.keys(series).filter((name) => series[name]?.length);
  const figure = h("figure", { class: "chart", id, "aria-label": title }, h("figcaption", {}, title));
  if (!names.length) {
    figure.append(h("p", { class: "empty" }, "No points yet."));
    return figure;
  }
  const steps = [...new Set(names.flatMap((name) => series[name].map((p) => p.step)))].sort((a, b) => a - b);
  const columns = names.map((name) => {
    const byStep = new Map(series[name].map((p) => [p.step, p.value]));
    return steps.map((step) => byStep.get(step) ?? null);
  });
  const plot = new uPlot(
    {
      width,
      height: 200,
      scales: { x: { time: false } },
      legend: { show: false },
      series: [
        { label: "step" },
        ...names.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true })),
      ],
      axes: [{ label: "step" }, { values: (_, ticks) => ticks.map(short) }],
    },
    [steps, ...columns] as uPlot.AlignedData,
  );
  figure.append(plot.root);
  // The latest values as text, for screen readers and tests.
  figure.append(
    h(
      "p",
      { class: "latest" },
      names.map((name) => `${name}: ${short(series[name][series[name].length - 1].value)}`).join(", "),
    ),
  );
  return figure;
}

/** A number in at most three significant digits; small ones (a learning rate of 1e-4) and
 * large ones in scientific notation, which uPlot's default axis labels round to 0.000. */
function short(value: number): string {
  const size = Math.abs(value);
  if (value === 0) return "0";
  if (size < 0.01 || size >= 1e5) return Number(value.toPrecision(3)).toExponential();
  return size >= 100 ? value.toFixed(0) : String(Number(value.toPrecision(3)));
}
