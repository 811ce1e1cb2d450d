// Jobs: the list with status, progress and cost, filtered by status, method and base model.
import { FT, api, query, type ApiError } from "../api";
import { field, h, money, notice, replace, select } from "../dom";
import { METHODS, STATUSES, type Job } from "../types";

export function jobsScreen(main: HTMLElement, alive: () => boolean, params: URLSearchParams): void {
  const status = select([["", "Any status"], ...STATUSES.map((s): [string, string] => [s, s])], params.get("status") ?? "");
  const method = select([["", "Any method"], ...METHODS.map((m): [string, string] => [m, m])]);
  const model = h("input", { type: "text", id: "filter-model", placeholder: "any" });
  status.id = "filter-status";
  method.id = "filter-method";
  const body = h("tbody", { id: "job-rows" });
  const message = h("div", { "aria-live": "polite" });

  const load = async () => {
    try {
      const page = await api<{ jobs: Job[] }>(
        "GET",
        `${FT}/jobs${query({ status: status.value, method: method.value, base_model: model.value.trim(), limit: 100 })}`,
      );
      replace(message, page.jobs.length ? null : h("p", {}, "No jobs match. ", h("a", { href: "#/datasets" }, "Start with a dataset.")));
      replace(body, ...page.jobs.map(row));
    } catch (error) {
      replace(message, notice((error as ApiError).message, "error"));
    }
  };
  for (const control of [status, method, model]) control.addEventListener("change", () => void load());

  replace(
    main,
    h("h1", {}, "Jobs"),
    h("p", {}, h("a", { href: "#/datasets", class: "cta" }, "New job: upload a dataset"), " or ", h("a", { href: "#/plan" }, "plan one")),
    h("div", { class: "filters", role: "search" }, field("Status", status), field("Method", method), field("Base model", model)),
    message,
    h(
      "table",
      { id: "jobs" },
      h("caption", {}, "Your jobs, newest first"),
      h(
        "thead",
        {},
        h("tr", {}, ...["Job", "Status", "Progress", "Base model", "Method", "Cost now", "Estimated", "Created"].map((t) => h("th", {}, t))),
      ),
      body,
    ),
  );
  void load();
  const timer = setInterval(() => (alive() ? void load() : clearInterval(timer)), 5000);
}

function row(job: Job): HTMLElement {
  const percent = Math.round(job.progress.fraction * 100);
  return h(
    "tr",
    {},
    h("td", {}, h("a", { href: `#/jobs/${job.job_id}` }, job.name ?? job.job_id)),
    h("td", {}, h("span", { class: `status ${job.status}` }, job.status)),
    h("td", {}, h("progress", { max: 100, value: percent, "aria-label": `Progress of ${job.job_id}` }), ` ${percent}%`),
    h("td", {}, job.spec.base_model),
    h("td", {}, job.spec.method),
    h("td", {}, money(job.cost.current_usd)),
    h("td", {}, money(job.cost.estimated_total_usd)),
    h("td", {}, new Date(job.created_at).toLocaleString()),
  );
}
