// The chat playground of a deployed job: one message goes to the fine-tuned model and to
// its base model, both through the OpenAI route /v1/chat/completions, and the two answers
// are shown side by side. A base the deployment does not serve (full fine-tuning) is
// refused by the API (409), and its message takes the base column. Below, the
// evaluation's held-out prompts with the base model's and the fine-tuned model's answers.
import { FT, api, type ApiError } from "../api";
import { field, h, replace } from "../dom";

interface EvaluationRow {
  prompt: string;
  expected: string;
  base: string | null;
  fine_tuned: string;
}

/** The OpenAI job object's model names: the base model, and the fine-tuned model once it exists. */
interface OpenAiJob {
  model: string;
  fine_tuned_model: string | null;
}

export function playground(jobId: string): HTMLElement {
  const prompt = h("textarea", { id: "chat-prompt", rows: 3 });
  const maxTokens = h("input", { type: "number", id: "chat-max-tokens", min: 1, max: 512, value: 32 });
  const send = h("button", { type: "submit", id: "chat-send" }, "Send");
  const form = h("form", { id: "chat-form", "aria-label": "Chat" }, field("Message", prompt), field("Max tokens", maxTokens), send);
  const tuned = column("chat", "Fine-tuned model");
  const base = column("base", "Base model");
  const compare = h("section", { id: "base-vs-tuned", "aria-label": "Base model and fine-tuned answers to held-out prompts" });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void askBoth(jobId, prompt.value, Number(maxTokens.value) || 32, { tuned: tuned.answer, base: base.answer }, send);
  });
  void showComparison(jobId, compare);
  return h(
    "div",
    { id: "playground" },
    form,
    h("div", { class: "playground", id: "chat-answers" }, tuned.section, base.section),
    compare,
  );
}

/** A labelled answer column: its heading names the model, its answer region is live. */
function column(prefix: string, title: string): { section: HTMLElement; answer: HTMLElement } {
  const heading = h("h3", { id: `${prefix}-heading` }, title);
  const answer = h("div", { id: `${prefix}-answer`, class: "answer", "aria-live": "polite", "aria-labelledby": heading.id });
  return { section: h("section", { "aria-labelledby": heading.id }, heading, answer), answer };
}

async function askBoth(
  jobId: string,
  text: string,
  maxTokens: number,
  targets: { tuned: HTMLElement; base: HTMLElement },
  send: HTMLButtonElement,
): Promise<void> {
  send.disabled = true;
  replace(targets.tuned, h("p", {}, "Asking…"));
  replace(targets.base, h("p", {}, "Asking…"));
  try {
    const job = await api<OpenAiJob>("GET", `/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}`);
    await Promise.all([
      ask(job.fine_tuned_model, text, maxTokens, targets.tuned, "chat"),
      ask(job.model, text, maxTokens, targets.base, "base"),
    ]);
  } catch (error) {
    const message = h("p", { role: "alert" }, `Chat: ${(error as ApiError).message}`);
    replace(targets.tuned, message);
    replace(targets.base, message.cloneNode(true));
  } finally {
    send.disabled = false;
  }
}

async function ask(model: string | null, text: string, maxTokens: number, target: HTMLElement, prefix: string): Promise<void> {
  const answer = await completion(model, text, maxTokens);
  replace(
    target,
    h("p", { class: "model-name" }, h("code", { id: `${prefix}-model` }, model ?? "—")),
    "text" in answer
      ? h("p", {}, h("strong", {}, "Answer: "), h("span", { id: `${prefix}-text` }, answer.text))
      : h("p", { class: "notice info", id: `${prefix}-refused` }, answer.refused),
  );
}

/** The model's answer, or the API's reason for not giving one (e.g. 409 model_not_deployed). */
async function completion(model: string | null, text: string, maxTokens: number): Promise<{ text: string } | { refused: string }> {
  try {
    const reply = await api<{ choices: { message: { content: string } }[] }>("POST", "/v1/chat/completions", {
      model,
      messages: [{ role: "user", content: text }],
      max_tokens: maxTokens,
    });
    return { text: reply.choices[0]?.message.content ?? "" };
  } catch (error) {
    return { refused: (error as ApiError).message };
  }
}

async function showComparison(jobId: string, target: HTMLElement): Promise<void> {
  try {
    const report = await api<{ rows: EvaluationRow[]; base_note: string | null }>("GET", `${FT}/jobs/${encodeURIComponent(jobId)}/evaluation`);
    replace(
      target,
      h("h3", {}, "Base model beside the fine-tuned model (held-out prompts)"),
      report.base_note ? h("p", {}, report.base_note) : null,
      h(
        "table",
        { id: "comparison" },
        h("thead", {}, h("tr", {}, h("th", {}, "Prompt"), h("th", {}, "Expected"), h("th", {}, "Base model"), h("th", {}, "Fine-tuned"))),
        h("tbody", {}, ...report.rows.map((r) => h("tr", {}, h("td", {}, r.prompt), h("td", {}, r.expected), h("td", {}, r.base ?? "—"), h("td", {}, r.fine_tuned)))),
      ),
    );
  } catch (error) {
    replace(target, h("p", {}, `No evaluation to compare: ${(error as ApiError).message}`));
  }
}
