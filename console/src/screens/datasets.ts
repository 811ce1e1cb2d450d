// Datasets: drop a file, read its validation report, upload it for a job.
import { FT, api, putWithProgress, type ApiError } from "../api";
import { count, field, h, notice, replace } from "../dom";
import { draft, type HistogramBin, type Issue, type Validation } from "../types";

// What to do about each issue code (docs/datasets.md, "Issues").
const FIXES: Record<string, string> = {
  file_too_large: "split the file (limit WHETSTONE_MAX_UPLOAD_BYTES, 5 GiB)",
  empty_file: "upload a file with examples",
  unknown_format: "name it .jsonl/.csv/.parquet or set format",
  json_array: "write one JSON object per line",
  parquet_unreadable: "re-export the Parquet file",
  unknown_column: "fix the column mapping",
  no_usable_columns: "rename the columns or map them",
  row_too_large: "shorten the example (limit WHETSTONE_MAX_ROW_BYTES, 1 MiB)",
  non_utf8: "save the file as UTF-8",
  invalid_json: "fix the JSON (the message gives the column)",
  not_an_object: "one JSON object per line",
  unrecognized_record: "use the keys of one format",
  mixed_formats: "one format per file",
  mixed_kinds: "the same fields in every record",
  missing_field: "add the field",
  empty_field: "give it a text",
  wrong_type: "use the type the message names",
  unknown_role: "use a listed role",
  misplaced_system: "system only as the first turn",
  last_turn_not_assistant: "end with the assistant's answer",
  invalid_weight: "weight 0 or 1, assistant turns only",
  malformed_csv: "fix quoting / field count",
  empty_prompt: "give the pair's prompt (prompt, or input.messages)",
  prompt_not_user_last: "end input.messages with the user's turn",
  missing_side: "give both the chosen and the rejected answer",
  identical_pair: "chosen and rejected differ, or drop the pair",
  method_data_mismatch: "preference pairs with method dpo, other data with other methods",
  too_few_examples: "at least 100 valid examples",
  single_class: "a classifier needs two labels",
  bom: "save without BOM (it is ignored)",
  blank_line: "remove it (it is skipped)",
  few_examples: "1,000+ recommended",
  duplicates: "more than 10% exact duplicates",
  near_duplicates: "more than 10% near-duplicates",
  truncation: "more than 1% longer than the cutoff",
  class_imbalance: "largest/smallest class above 10:1",
};

interface UploadSlot {
  upload_id: string;
  url: string | null;
  path: string;
}

export function datasetsScreen(main: HTMLElement): void {
  const input = h("input", { type: "file", id: "dataset-file", accept: ".jsonl,.json,.csv,.parquet" });
  const cutoff = h("input", { type: "number", id: "dataset-cutoff", min: 1, value: 2048 });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drop a JSONL, CSV or Parquet file here, or "),
    h("label", { for: "dataset-file", class: "filebutton" }, "choose a file"),
    input,
  );
  const progress = h("progress", { id: "upload-progress", max: 100, value: 0, "aria-label": "Upload progress" });
  const progressText = h("span", { id: "upload-status", "aria-live": "polite" }, "No file yet.");
  const report = h("section", { id: "report", "aria-live": "polite", "aria-label": "Validation report" });
  const next = h("p", { id: "dataset-next" });

  const take = (file: File | undefined) => {
    if (file) void handle(file, Number(cutoff.value) || 2048, progress, progressText, report, next);
  };
  input.addEventListener("change", () => take(input.files?.[0]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take(e.dataTransfer?.files[0]);
  });

  replace(
    main,
    h("h1", {}, "Datasets"),
    h(
      "p",
      {},
      "The file is checked as the platform checks it at create, then uploaded (large files too) ",
      "so a job can name it.",
    ),
    field("Cutoff length (tokens)", cutoff, "Examples longer than this are truncated."),
    zone,
    h("div", { class: "progress" }, progress, " ", progressText),
    report,
    next,
  );
  if (draft.report) showReport(report, draft.report, draft.filename ?? "");
}

async function handle(
  file: File,
  cutoff: number,
  progress: HTMLProgressElement,
  status: HTMLElement,
  report: HTMLElement,
  next: HTMLElement,
): Promise<void> {
  draft.uploadId = null;
  replace(next);
  replace(report, h("p", {}, `Checking ${file.name}…`));
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("cutoff_length", String(cutoff));
  const checked = api<Validation>("POST", `${FT}/datasets/validate`, form);
  const uploaded = upload(file, progress, status);
  try {
    const result = await checked;
    draft.report = result;
    draft.filename = file.name;
    showReport(report, result, file.name);
  } catch (error) {
    replace(report, notice(`The check failed: ${(error as ApiError).message}`, "error"));
  }
  try {
    draft.uploadId = await uploaded;
    status.textContent = `Uploaded ${file.name} as ${draft.uploadId}.`;
    if (draft.report?.valid) {
      replace(next, h("a", { href: "#/plan", class: "cta", id: "plan-with-dataset" }, "Plan a job with this dataset →"));
    }
  } catch (error) {
    status.textContent = `The upload failed: ${(error as ApiError).message}`;
  }
}

async function upload(file: File, progress: HTMLProgressElement, status: HTMLElement): Promise<string> {
  const slot = await api<UploadSlot>("POST", `${FT}/uploads`);
  status.textContent = `Uploading ${file.name}: 0%`;
  await putWithProgress(slot.url ?? slot.path, file, (fraction) => {
    progress.value = Math.round(fraction * 100);
    status.textContent = `Uploading ${file.name}: ${progress.value}%`;
  });
  progress.value = 100;
  return slot.upload_id;
}

function where(issue: Issue): string {
  if (issue.line !== null) return `line ${issue.line}`;
  if (issue.row !== null) return `row ${issue.row}`;
  return "file";
}

function issueTable(caption: string, issues: Issue[], id: string): HTMLElement {
  return h(
    "table",
    { id },
    h("caption", {}, `${caption} (${issues.length})`),
    h("thead", {}, h("tr", {}, h("th", {}, "Where"), h("th", {}, "Problem"), h("th", {}, "What to do"))),
    h(
      "tbody",
      {},
      ...issues.map((issue) =>
        h(
          "tr",
          {},
          h("td", {}, where(issue)),
          h("td", {}, h("code", {}, issue.code), " ", issue.message),
          h("td", {}, FIXES[issue.code] ?? ""),
        ),
      ),
    ),
  );
}

function histogram(bins: HistogramBin[]): HTMLElement {
  const most = Math.max(1, ...bins.map((b) => b.count));
  return h(
    "figure",
    { id: "token-histogram" },
    h("figcaption", {}, "Tokens per example"),
    h(
      "ul",
      { class: "bars" },
      ...bins.map((bin) =>
        h(
          "li",
          {},
          h("span", { class: "barlabel" }, bin.upper === null ? `${bin.lower}+` : `${bin.lower}–${bin.upper}`),
          h("span", { class: "bar", style: `width:${(bin.count / most) * 100}%` }),
          h("span", {}, String(bin.count)),
        ),
      ),
    ),
  );
}

function split(total: number): HTMLElement {
  // The platform's default split (spec.dataset.split); the plan screen can change it.
  const parts: [string, number][] = [["train", 80], ["validation", 15], ["test", 5]];
  return h(
    "p",
    { id: "split" },
    "Split (default 80/15/5): ",
    parts.map(([name, share]) => `${name} ≈ ${Math.round((total * share) / 100)}`).join(", "),
  );
}

function showReport(report: HTMLElement, result: Validation, filename: string): void {
  const tokens = result.stats.tokens;
  replace(
    report,
    h("h2", {}, `Report for ${filename}`),
    h(
      "p",
      { id: "verdict", class: result.valid ? "ok" : "bad" },
      result.valid ? "Valid" : "Not valid",
      `: ${result.num_examples} examples, format ${result.format ?? "unknown"}, kind ${result.kind ?? "unknown"}.`,
    ),
    result.errors.length ? issueTable("Errors", result.errors, "errors") : h("p", {}, "No errors."),
    result.warnings.length ? issueTable("Warnings", result.warnings, "warnings") : h("p", {}, "No warnings."),
    h(
      "dl",
      { id: "stats", class: "facts" },
      h("dt", {}, "Records read"),
      h("dd", {}, String(result.stats.records_read)),
      h("dt", {}, "Invalid records"),
      h("dd", {}, String(result.stats.invalid_records)),
      h("dt", {}, "Bytes"),
      h("dd", {}, count(result.stats.bytes_read)),
      tokens && h("dt", {}, `Tokens (${tokens.method})`),
      tokens && h("dd", {}, `total ${tokens.total}, mean ${tokens.mean?.toFixed(1)}, p95 ${tokens.p95}, max ${tokens.max}`),
      tokens && h("dt", {}, "Truncated at cutoff"),
      tokens && h("dd", {}, `${tokens.truncated} (${(tokens.truncated_share * 100).toFixed(1)}%) past ${tokens.cutoff_length}`),
    ),
    tokens && histogram(tokens.histogram),
    split(result.num_examples),
  );
}
