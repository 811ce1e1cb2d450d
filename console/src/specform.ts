// The job spec form, drawn from the API's own OpenAPI document: every JobSpec field with its
// description, default and choices, grouped as product.md groups them, so the form never
// drifts from the API. Only fields changed from their default are sent.
import { api, type FieldError } from "./api";
import { h, newId, replace } from "./dom";

type Schema = {
  $ref?: string;
  anyOf?: Schema[];
  type?: string;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  title?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
};

// product.md's groups, and the methods each method-specific group belongs to.
const GROUPS: [key: string, title: string, methods: string[] | null][] = [
  ["lora", "LoRA", ["lora", "qlora", "dpo"]],
  ["quantization", "QLoRA quantization", ["qlora", "dpo"]],
  ["prompt_tuning", "Prompt tuning", ["prompt_tuning"]],
  ["dpo", "DPO (preference pairs)", ["dpo"]],
  ["dataset", "Dataset parameters", null],
  ["training", "Training parameters", null],
  ["advanced", "Advanced configuration", null],
  ["hardware", "Hardware configuration", null],
  ["evaluation", "Evaluation", null],
];
// Set elsewhere on the plan screen (model picker, dataset field).
const ELSEWHERE = new Set(["dataset.source"]);

interface Control {
  path: string;
  schema: Schema;
  nullable: boolean;
  element: HTMLInputElement | HTMLSelectElement;
  error: HTMLElement;
}

export interface SpecForm {
  element: HTMLElement;
  values(): Record<string, unknown>;
  showMethod(method: string): void;
  clearErrors(): void;
  /** Errors shown beside their fields; the messages of those that have no field here. */
  showErrors(errors: FieldError[]): string[];
}

export async function specForm(): Promise<SpecForm> {
  const doc = await api<{ components: { schemas: Record<string, Schema> } }>("GET", "/api/v1/openapi.json");
  const schemas = doc.components.schemas;
  const resolve = (s: Schema): Schema => (s.$ref ? schemas[s.$ref.split("/").pop() as string] : s);
  const controls: Control[] = [];
  const groups = new Map<string, [HTMLElement, string[] | null]>();
  const element = h("div", { id: "spec-form" });
  const spec = resolve({ $ref: "#/components/schemas/JobSpec" });

  const build = (container: HTMLElement, prefix: string, object: Schema) => {
    for (const [name, raw] of Object.entries(object.properties ?? {})) {
      const path = prefix ? `${prefix}.${name}` : name;
      if (ELSEWHERE.has(path)) continue;
      const options = raw.anyOf ?? [raw];
      const nullable = options.some((o) => o.type === "null");
      const schema = resolve(options.find((o) => o.type !== "null") ?? raw);
      if (schema.properties) {
        const nested = h("fieldset", {}, h("legend", {}, raw.title ?? name));
        build(nested, path, schema);
        container.append(nested);
        continue;
      }
      const control = input(path, schema, raw.default, nullable);
      const error = h("span", { class: "field-error", id: `${control.id}-error`, role: "alert" });
      const hint = `${raw.description ?? ""} Default: ${raw.default === undefined || raw.default === null ? "none" : JSON.stringify(raw.default)}.`;
      const hintEl = h("small", { class: "hint", id: `${control.id}-hint` }, hint);
      control.setAttribute("aria-describedby", `${hintEl.id} ${error.id}`);
      controls.push({ path, schema: { ...schema, default: raw.default }, nullable, element: control, error });
      container.append(h("div", { class: "field" }, h("label", { for: control.id }, raw.title ?? name), control, hintEl, error));
    }
  };

  for (const [key, title, methods] of GROUPS) {
    const sub = spec.properties?.[key];
    if (!sub) continue;
    const fieldset = h("fieldset", { id: `group-${key}` }, h("legend", {}, title));
    build(fieldset, key, resolve(sub));
    groups.set(key, [fieldset, methods]);
    element.append(fieldset);
  }

  return {
    element,
    values: () => {
      const spec: Record<string, unknown> = {};
      for (const control of controls) {
        const value = read(control);
        if (value === undefined) continue;
        const keys = control.path.split(".");
        let target = spec;
        for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
        target[keys[keys.length - 1]] = value;
      }
      return spec;
    },
    showMethod: (method) => {
      for (const [fieldset, methods] of groups.values()) fieldset.hidden = methods !== null && !methods.includes(method);
    },
    clearErrors: () => controls.forEach((c) => replace(c.error)),
    showErrors: (errors) => {
      const unplaced: string[] = [];
      for (const error of errors) {
        const path = error.loc.replace(/^spec\./, "");
        const control = controls.find((c) => c.path === path);
        if (!control) {
          unplaced.push(`${error.loc}: ${error.message}`);
          continue;
        }
        control.element.closest("fieldset")?.removeAttribute("hidden");
        control.element.setAttribute("aria-invalid", "true");
        replace(control.error, error.message);
      }
      return unplaced;
    },
  };
}

function input(path: string, schema: Schema, fallback: unknown, nullable: boolean): HTMLInputElement | HTMLSelectElement {
  const id = `spec-${path.replace(/\./g, "-")}`;
  const value = fallback ?? schema.default;
  if (schema.enum) {
    const el = h("select", { id, name: path });
    if (nullable) el.append(h("option", { value: "" }, "(none)"));
    for (const option of schema.enum) el.append(h("option", { value: String(option) }, String(option)));
    el.value = value === undefined || value === null ? "" : String(value);
    return el;
  }
  if (schema.type === "boolean") {
    const el = h("input", { id, name: path, type: "checkbox" });
    el.checked = value === true;
    return el;
  }
  const numeric = schema.type === "integer" || schema.type === "number";
  const el = h("input", {
    id: id || newId("spec"),
    name: path,
    type: numeric ? "number" : "text",
    step: schema.type === "number" ? "any" : null,
    min: schema.minimum ?? null,
    max: schema.maximum ?? null,
  });
  el.value = value === undefined || value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value);
  return el;
}

/** The control's value when it differs from the default; undefined to leave it out. */
function read(control: Control): unknown {
  const { element, schema } = control;
  if (element instanceof HTMLInputElement && element.type === "checkbox") {
    return element.checked === (schema.default === true) ? undefined : element.checked;
  }
  const text = element.value.trim();
  const fallback = schema.default;
  const shown = fallback === undefined || fallback === null ? "" : Array.isArray(fallback) ? fallback.join(", ") : String(fallback);
  if (text === shown) return undefined;
  if (text === "") return control.nullable ? null : undefined;
  if (schema.type === "array") return text.split(",").map((s) => s.trim()).filter(Boolean);
  if (schema.type === "integer" || schema.type === "number") return Number(text);
  if (schema.enum && typeof schema.enum[0] === "number") return Number(text);
  return text;
}
