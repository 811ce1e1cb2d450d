// A job: its progress and cost, live curves and resource charts, logs with follow, the
// actions its status allows, downloads, deploy and a chat playground.
import { FT, api, download, query, type ApiError } from "../api";
import { lineChart } from "../chart";
import { button, field, h, hours, money, notice, replace, select } from "../dom";
import { ENDED, type Deployment, type Job, type LogEntry, type MetricPoint } from "../types";
import { playground } from "./chat";

const POLL_MS = 2000;
const CHARTS: [title: string, id: string, pick: (name: string) => boolean][] = [
  ["Loss and validation loss", "chart-loss", (n) => n === "loss" || n === "eval_loss"],
  ["Learning rate", "chart-lr", (n) => n === "learning_rate"],
  ["Throughput", "chart-throughput", (n) => n === "tokens_per_second" || n === "samples_per_second"],
  ["GPU", "chart-gpu", (n) => /^gpu\d+_(util_pct|memory_used_mb)$/.test(n)],
  ["CPU %", "chart-cpu", (n) => n === "cpu_pct"],
  ["Memory (MB)", "chart-memory", (n) => n === "ram_used_mb" || n === "process_rss_mb"],
];

export async function jobScreen(main: HTMLElement, jobId: string, alive: () => boolean): Promise<void> {
  const url = `${FT}/jobs/${encodeURIComponent(jobId)}`;
  const summary = h("section", { id: "job-summary", "aria-live": "polite", "aria-label": "Status" });
  const actions = h("div", { class: "actions", id: "job-actions" });
  const actionMessage = h("div", { "aria-live": "polite" });
  const charts = h("section", { id: "charts", class: "charts", "aria-label": "Curves" });
  const source = select([["", "All sources"], ["build", "build"], ["deployment", "deployment"], ["training", "training"]]);
  const level = select([["", "All levels"], ["debug", "debug+"], ["info", "info+"], ["warning", "warning+"], ["error", "error+"]]);
  source.id = "log-source";
  level.id = "log-level";
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const logs = h("ol", { id: "logs", class: "logs", tabindex: 0, "aria-label": "Log lines" });
  const downloads = h("section", { id: "downloads", "aria-labelledby": "downloads-heading" });
  const deploy = h("section", { id: "deploy", "aria-labelledby": "deploy-heading" });
  let job: Job | null = null;
  let drawnFor = "";
  // An action's "sent" note lasts until the status it left the job in changes.
  let sentAt = "";

  const refreshLogs = async () => {
    const entries: LogEntry[] = [];
    let token: string | null = null;
    for (let page = 0; page < 5; page += 1) {
      const answer: { logs: LogEntry[]; next_token: string | null } = await api(
        "GET",
        `${url}/logs${query({ log_type: source.value, level: level.value, limit: 500, next_token: token })}`,
      );
      entries.push(...answer.logs);
      token = answer.next_token;
      if (!token) break;
    }
    replace(
      logs,
      ...entries.map((e) =>
        h("li", { class: `log ${e.level}` }, h("time", {}, e.time.slice(11, 19)), ` [${e.source}] ${e.level.toUpperCase()} ${e.message}`),
      ),
    );
    if (follow.checked) logs.scrollTop = logs.scrollHeight;
  };
  for (const control of [source, level]) control.addEventListener("change", () => void refreshLogs());

  const act = async (label: string, method: string, path: string) => {
    try {
      await api(method, `${url}${path}`);
      replace(actionMessage, notice(`${label}: sent.`));
      if (method === "DELETE" && path === "") location.hash = "#/jobs";
      else await refresh();
      sentAt = job?.status ?? "";
    } catch (error) {
      replace(actionMessage, notice(`${label}: ${(error as ApiError).message}`, "error"));
    }
  };

  const refresh = async () => {
    job = await api<Job>("GET", url);
    if (job.deployment?.status === "starting") {
      // Readiness is checked when the deployment itself is read.
      job.deployment = await api<Deployment>("GET", `${url}/deployment`);
    }
    drawSummary(summary, job);
    if (sentAt && sentAt !== job.status) {
      sentAt = "";
      replace(actionMessage);
    }
    drawActions(actions, job, act);
    const series = (await api<{ series: Record<string, MetricPoint[]> }>("GET", `${url}/metrics`)).series;
    const width = Math.max(280, Math.floor(charts.clientWidth / 2) - 40);
    replace(
      charts,
      ...CHARTS.map(([title, id, pick]) =>
        lineChart(title, id, Object.fromEntries(Object.entries(series).filter(([name]) => pick(name))), width),
      ),
    );
    if (follow.checked) await refreshLogs();
    const state = `${job.status}:${job.checkpoints.length}:${job.deployment?.status ?? ""}`;
    if (state !== drawnFor) {
      drawnFor = state;
      drawDownloads(downloads, job, url);
      drawDeploy(deploy, job, url, refresh);
    }
  };

  replace(
    main,
    h("p", {}, h("a", { href: "#/jobs" }, "← All jobs")),
    h("h1", {}, `Job ${jobId}`),
    summary,
    actions,
    actionMessage,
    h("h2", {}, "Curves"),
    charts,
    h("h2", { id: "logs-heading" }, "Logs"),
    h("div", { class: "filters" }, field("Source", source), field("Level", level), h("div", { class: "field" }, follow, h("label", { for: "log-follow" }, " Follow"))),
    logs,
    downloads,
    deploy,
  );
  try {
    await refresh();
  } catch (error) {
    replace(summary, notice((error as ApiError).message, "error"));
    return;
  }
  const tick = async () => {
    if (!alive()) return;
    const ended = job !== null && ENDED.includes(job.status) && job.deployment?.status !== "starting";
    if (!ended) await refresh().catch(() => undefined);
    setTimeout(() => void tick(), POLL_MS);
  };
  setTimeout(() => void tick(), POLL_MS);
}

function drawSummary(target: HTMLElement, job: Job): void {
  const percent = Math.round(job.progress.fraction * 100);
  replace(
    target,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Status"),
      h("dd", {}, h("span", { id: "job-status", class: `status ${job.status}` }, job.status)),
      h("dt", {}, "Progress"),
      h(
        "dd",
        {},
        h("progress", { max: 100, value: percent, "aria-label": "Training progress" }),
        ` ${percent}% (step ${job.progress.step}/${job.progress.max_steps}, epoch ${job.progress.epoch.toFixed(2)})`,
        job.progress.eta_seconds ? `, about ${hours(job.progress.eta_seconds / 3600)} left` : "",
      ),
      h("dt", {}, "Model"),
      h("dd", {}, `${job.spec.base_model} (${job.spec.method})`),
      h("dt", {}, "Hardware"),
      h("dd", { id: "job-hardware" }, hardware(job)),
      h("dt", {}, "Dataset"),
      h("dd", {}, `${job.dataset.filename ?? job.dataset.source}, ${job.dataset.num_examples ?? "?"} examples`),
      h("dt", {}, "Cost now"),
      h("dd", { id: "cost-now" }, money(job.cost.current_usd)),
      h("dt", {}, "Estimated total"),
      h("dd", { id: "cost-estimated" }, `${money(job.cost.estimated_total_usd)} (about ${hours(job.estimate.estimated_hours)})`),
    ),
    job.error ? notice(`${job.error.code}: ${job.error.message}`, "error") : null,
  );
}

/** What the job runs on: the device its trainer reported (the CPU, or its GPUs); before
 * that, the GPUs its spec asks for. */
function hardware(job: Job): string {
  const asked = `${job.spec.hardware.gpu_count} × ${job.spec.hardware.gpu_type}`;
  const device = job.device;
  if (!device) return `${asked} requested`;
  return device.gpu_count ? `${device.gpu_count} × ${device.gpu_name ?? "GPU"}` : `CPU (the spec asks for ${asked})`;
}

function drawActions(target: HTMLElement, job: Job, act: (label: string, method: string, path: string) => Promise<void>): void {
  const live = !ENDED.includes(job.status) && job.status !== "paused";
  replace(
    target,
    live && button("Stop", () => void act("Stop", "POST", "/stop"), { id: "stop" }),
    ["deploying", "training"].includes(job.status) && button("Pause", () => void act("Pause", "POST", "/pause"), { id: "pause" }),
    job.status === "paused" && button("Resume", () => void act("Resume", "POST", "/resume"), { id: "resume" }),
    (ENDED.includes(job.status) || job.status === "paused") &&
      button("Delete", () => confirm(`Delete job ${job.job_id} and everything it left?`) && void act("Delete", "DELETE", ""), { id: "delete" }),
  );
}

function drawDownloads(target: HTMLElement, job: Job, url: string): void {
  const artifact = select([["model", "Model (adapter or weights)"], ["adapter", "Adapter"], ["merged", "Merged model"], ["checkpoint", "Checkpoint"]]);
  artifact.id = "artifact";
  const step = select(downloadableSteps(job).map((n): [string, string] => {
    const saved = job.checkpoints.find((c) => c.step === n);
    return [String(n), `step ${n}${saved?.eval_loss != null ? `, val loss ${saved.eval_loss.toFixed(3)}` : ""}`];
  }));
  step.id = "checkpoint-step";
  const stepField = field("Checkpoint", step);
  stepField.hidden = true;
  artifact.addEventListener("change", () => (stepField.hidden = artifact.value !== "checkpoint"));
  const status = h("p", { id: "download-status", "aria-live": "polite" });
  const go = async () => {
    try {
      const link: { url: string; filename: string; size_bytes: number } = await api(
        "GET",
        `${url}/download${query({ artifact: artifact.value, step: artifact.value === "checkpoint" ? step.value : null })}`,
      );
      await download(link.url, link.filename);
      status.textContent = `Downloaded ${link.filename} (${link.size_bytes} bytes).`;
    } catch (error) {
      status.textContent = `Download: ${(error as ApiError).message}`;
    }
  };
  replace(
    target,
    h("h2", { id: "downloads-heading" }, "Downloads"),
    job.status === "completed" || job.checkpoints.length
      ? h("div", { class: "filters" }, field("What", artifact), stepField, button("Download", () => void go(), { id: "download" }))
      : h("p", {}, "Nothing to download yet: the model comes at completion, checkpoints as they are saved."),
    status,
  );
}

/** Steps of the checkpoints archived for download (training keeps only some of those it
 * saved); before the archives exist, those the job saved. */
function downloadableSteps(job: Job): number[] {
  const archived = Object.keys(job.artifacts?.archives ?? {})
    .map((name) => /checkpoint-(\d+)\.tar\.gz$/.exec(name)?.[1])
    .filter((step): step is string => step !== undefined)
    .map(Number);
  return archived.length ? archived.sort((a, b) => a - b) : job.checkpoints.map((c) => c.step);
}

function drawDeploy(target: HTMLElement, job: Job, url: string, refresh: () => Promise<void>): void {
  const status = h("p", { id: "deploy-status", "aria-live": "polite" });
  const deployment = job.deployment;
  const live = deployment && !["deleted", "failed"].includes(deployment.status);
  const deploy = async () => {
    try {
      await api("POST", `${url}/deploy`);
      status.textContent = "Deploying…";
      await refresh();
    } catch (error) {
      status.textContent = `Deploy: ${(error as ApiError).message}`;
    }
  };
  const undeploy = async () => {
    status.textContent = "Stopping the model server…";
    await api("DELETE", `${url}/deployment`).catch((error: ApiError) => (status.textContent = error.message));
    await refresh();
  };
  status.textContent = deployment ? `Deployment: ${deployment.status}${deployment.message ? ` (${deployment.message})` : ""}` : "Not deployed.";
  replace(
    target,
    h("h2", { id: "deploy-heading" }, "Deploy and chat"),
    job.status !== "completed"
      ? h("p", {}, "A completed job's model can be deployed.")
      : live
        ? button("Stop serving", () => void undeploy(), { id: "undeploy" })
        : button("Deploy", () => void deploy(), { id: "deploy-button" }),
    status,
    deployment?.status === "ready" ? playground(job.job_id) : null,
  );
}
