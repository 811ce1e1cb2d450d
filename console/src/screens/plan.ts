// Plan: pick a model and a method, choose hardware while the fit check and the estimate
// follow every setting, then create the job from the form (every spec field, as the
// OpenAPI document describes it: defaults, ranges, choices).
import { ApiError, FT, api } from "../api";
import { count, field, h, hours, money, notice, replace, select } from "../dom";
import { specForm, type SpecForm } from "../specform";
import { METHODS, draft, type Job } from "../types";

interface BaseModel {
  id: string;
  name: string;
  family: string;
  num_parameters: number;
  best_for: string;
  license: string;
}
interface MethodRequirement {
  method: string;
  required_gib: number;
  trainable_parameters: number;
  smallest_fitting: { gpu_type: string; gpu_count: number; hourly_rate_usd: number } | null;
}
interface Estimate {
  estimated_hours: number;
  estimated_cost_usd: number;
  hourly_rate_usd: number;
  instance_type: string;
  gpu_type: string;
  gpu_count: number;
  total_tokens: number;
  fits: boolean;
  required_gib: number;
  available_gib: number;
  smallest_fitting: { gpu_type: string; gpu_count: number } | null;
  setting_changes: { setting?: string; message?: string; [key: string]: unknown }[];
}

export async function planScreen(main: HTMLElement): Promise<void> {
  replace(main, h("h1", {}, "Plan a job"), h("p", {}, "Loading the catalog…"));
  const [models, form] = await Promise.all([
    api<{ models: BaseModel[] }>("GET", `${FT}/base-models`),
    specForm(),
  ]);
  const state = { model: models.models[0]?.id ?? "" };
  const family = select([["", "All families"], ...uniq(models.models.map((m) => m.family)).map((f): [string, string] => [f, f])]);
  family.id = "family-filter";
  const table = h("tbody");
  const path = h("input", { type: "text", id: "base-model-path", placeholder: "/path/to/model" });
  const method = select(METHODS.map((m): [string, string] => [m, m]), "lora");
  method.id = "method";
  const requirements = h("div", { id: "requirements", "aria-live": "polite" });
  const estimate = h("div", { id: "estimate", "aria-live": "polite" });
  const name = h("input", { type: "text", id: "job-name", maxlength: 200 });
  const source = h("input", { type: "text", id: "dataset-source", value: draft.uploadId ?? "", required: true });
  const formError = h("div", { id: "form-error" });

  const modelId = () => path.value.trim() || state.model;
  const drawModels = () => {
    replace(
      table,
      ...models.models
        .filter((m) => !family.value || m.family === family.value)
        .map((m) => {
          const radio = h("input", { type: "radio", name: "base-model", id: `model-${m.id}`, value: m.id });
          radio.checked = m.id === state.model && !path.value.trim();
          radio.addEventListener("change", () => {
            state.model = m.id;
            path.value = "";
            refresh();
          });
          return h(
            "tr",
            {},
            h("td", {}, radio, " ", h("label", { for: radio.id }, m.name)),
            h("td", {}, m.family),
            h("td", {}, count(m.num_parameters)),
            h("td", {}, m.best_for),
          );
        }),
    );
  };
  family.addEventListener("change", drawModels);
  drawModels();

  let timer = 0;
  const refresh = () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => {
      void showRequirements(requirements, modelId());
      void showEstimate(estimate, modelId(), method.value, form);
    }, 300);
  };
  for (const control of [path, method]) control.addEventListener("input", refresh);
  form.element.addEventListener("input", refresh);
  form.element.addEventListener("change", refresh);
  method.addEventListener("change", () => form.showMethod(method.value));
  form.showMethod(method.value);

  const create = h("button", { type: "submit", id: "create-job" }, "Create the job");
  const jobForm = h(
    "form",
    { id: "job-form", novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, "Job"),
      field("Name (optional)", name),
      field("Dataset (upload id, s3://, hf:// or a server path)", source, draft.filename ? `Uploaded: ${draft.filename}` : "Upload one on the Datasets page."),
    ),
    form.element,
    formError,
    create,
  );
  jobForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void submit(form, { name: name.value.trim() || null, model: modelId(), method: method.value, source: source.value.trim() }, formError, create);
  });

  replace(
    main,
    h("h1", {}, "Plan a job"),
    h(
      "section",
      { "aria-labelledby": "model-heading" },
      h("h2", { id: "model-heading" }, "1. Model and method"),
      field("Family", family),
      h(
        "table",
        { id: "models" },
        h("caption", {}, "Base models"),
        h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", {}, "Family"), h("th", {}, "Parameters"), h("th", {}, "Best for"))),
        table,
      ),
      field("Or a model folder on the server", path, "A local folder with config.json and weights (local runtime)."),
      field("Method", method),
      requirements,
    ),
    h(
      "section",
      { "aria-labelledby": "estimate-heading" },
      h("h2", { id: "estimate-heading" }, "2. Hardware, fit and estimate"),
      h("p", {}, "GPU type, count and every other setting are in the form below; the estimate follows them."),
      estimate,
    ),
    h("section", { "aria-labelledby": "form-heading" }, h("h2", { id: "form-heading" }, "3. The job"), jobForm),
  );
  refresh();
}

function uniq(values: string[]): string[] {
  return [...new Set(values)];
}

async function showRequirements(target: HTMLElement, modelId: string): Promise<void> {
  if (!modelId) return;
  try {
    const answer = await api<{ methods: MethodRequirement[] }>("GET", `${FT}/models/${encodeURIComponent(modelId)}/requirements`);
    replace(
      target,
      h(
        "table",
        {},
        h("caption", {}, "What each method needs"),
        h("thead", {}, h("tr", {}, h("th", {}, "Method"), h("th", {}, "GPU memory"), h("th", {}, "Trainable parameters"), h("th", {}, "Smallest fitting hardware"))),
        h(
          "tbody",
          {},
          ...answer.methods.map((r) =>
            h(
              "tr",
              {},
              h("td", {}, r.method),
              h("td", {}, `${r.required_gib.toFixed(1)} GiB`),
              h("td", {}, count(r.trainable_parameters)),
              h("td", {}, r.smallest_fitting ? `${r.smallest_fitting.gpu_count} × ${r.smallest_fitting.gpu_type} (${money(r.smallest_fitting.hourly_rate_usd)}/h)` : "none"),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    replace(target, notice(`Requirements: ${(error as ApiError).message}`, "error"));
  }
}

async function showEstimate(target: HTMLElement, modelId: string, method: string, form: SpecForm): Promise<void> {
  const spec = form.values();
  const hardware = (spec.hardware ?? {}) as Record<string, unknown>;
  const training = (spec.training ?? {}) as Record<string, unknown>;
  try {
    const e = await api<Estimate>("POST", `${FT}/estimate-cost`, {
      model_id: modelId,
      method,
      gpu_type: hardware.gpu_type ?? null,
      gpu_count: hardware.gpu_count ?? null,
      config: spec,
      num_examples: draft.report?.num_examples || 1000,
      epochs: training.epochs ?? null,
    });
    replace(
      target,
      h(
        "p",
        { id: "fit", class: e.fits ? "ok" : "bad" },
        e.fits ? "Fits" : "Does not fit",
        `: needs ${e.required_gib.toFixed(1)} GiB of ${e.available_gib.toFixed(1)} GiB`,
        e.smallest_fitting && !e.fits ? `; smallest fitting: ${e.smallest_fitting.gpu_count} × ${e.smallest_fitting.gpu_type}` : "",
      ),
      h(
        "p",
        { id: "estimate-cost" },
        `About ${hours(e.estimated_hours)} on ${e.gpu_count} × ${e.gpu_type} (${e.instance_type}) at ${money(e.hourly_rate_usd)}/h: `,
        h("strong", {}, money(e.estimated_cost_usd)),
        ` (${count(e.total_tokens)} tokens, ${draft.report?.num_examples || 1000} examples${draft.report ? "" : " assumed"}).`,
      ),
      e.setting_changes.length
        ? h("ul", {}, ...e.setting_changes.map((c) => h("li", {}, String(c.message ?? JSON.stringify(c)))))
        : null,
    );
  } catch (error) {
    replace(target, notice(`Estimate: ${(error as ApiError).message}`, "error"));
  }
}

async function submit(
  form: SpecForm,
  job: { name: string | null; model: string; method: string; source: string },
  formError: HTMLElement,
  button: HTMLButtonElement,
): Promise<void> {
  form.clearErrors();
  replace(formError);
  const spec = form.values();
  spec.base_model = job.model;
  spec.method = job.method;
  spec.dataset = { ...((spec.dataset as object) ?? {}), source: job.source };
  button.disabled = true;
  try {
    const created = await api<Job>("POST", `${FT}/jobs/json`, { name: job.name, spec });
    location.hash = `#/jobs/${created.job_id}`;
  } catch (error) {
    const failure = error as ApiError;
    const fields = failure instanceof ApiError ? failure.fieldErrors() : [];
    const unplaced = form.showErrors(fields);
    const said = fields.length && !unplaced.length ? "fix the fields marked above" : unplaced.join("; ") || failure.message;
    replace(formError, notice(`Not created: ${said}.`, "error"));
  } finally {
    button.disabled = false;
  }
}
