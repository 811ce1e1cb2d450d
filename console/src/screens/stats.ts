// Stats: jobs by status, GPU hours and spend.
import { FT, api } from "../api";
import { h, money, replace } from "../dom";

interface Stats {
  total_jobs: number;
  jobs_by_status: Record<string, number>;
  gpu_hours: number;
  spend_usd: number;
  success_rate: number | null;
}

export async function statsScreen(main: HTMLElement): Promise<void> {
  const stats = await api<Stats>("GET", `${FT}/stats`);
  const most = Math.max(1, ...Object.values(stats.jobs_by_status));
  replace(
    main,
    h("h1", {}, "Stats"),
    h(
      "dl",
      { class: "facts", id: "totals" },
      h("dt", {}, "Jobs"),
      h("dd", {}, String(stats.total_jobs)),
      h("dt", {}, "GPU hours"),
      h("dd", { id: "gpu-hours" }, stats.gpu_hours.toFixed(2)),
      h("dt", {}, "Spend"),
      h("dd", { id: "spend" }, money(stats.spend_usd)),
      h("dt", {}, "Success rate"),
      h("dd", {}, stats.success_rate === null ? "—" : `${Math.round(stats.success_rate * 100)}%`),
    ),
    h(
      "figure",
      { id: "by-status" },
      h("figcaption", {}, "Jobs by status"),
      h(
        "ul",
        { class: "bars" },
        ...Object.entries(stats.jobs_by_status).map(([status, n]) =>
          h(
            "li",
            {},
            h("a", { class: "barlabel", href: `#/jobs?status=${status}` }, status),
            h("span", { class: "bar", style: `width:${(n / most) * 100}%` }),
            h("span", {}, String(n)),
          ),
        ),
      ),
    ),
  );
}
