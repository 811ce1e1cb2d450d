// The chat playground of a deployed job: the fine-tuned model answers through the OpenAI
// route /v1/chat/completions; beside it, the evaluation's held-out prompts with the base
// model's and the fine-tuned model's answers (the API serves base models no chat).
import { FT, api, type ApiError } from "../api";
import { field, h, replace } from "../dom";

interface EvaluationRow {
  prompt: string;
  expected: string;
  base: string | null;
  fine_tuned: string;
}

export function playground(jobId: string): HTMLElement {
  const prompt = h("textarea", { id: "chat-prompt", rows: 3 });
  const maxTokens = h("input", { type: "number", id: "chat-max-tokens", min: 1, max: 512, value: 32 });
  const answer = h("div", { id: "chat-answer", "aria-live": "polite", class: "answer" });
  const send = h("button", { type: "submit", id: "chat-send" }, "Send");
  const form = h("form", { id: "chat-form" }, field("Message", prompt), field("Max tokens", maxTokens), send);
  const compare = h("section", { id: "base-vs-tuned", "aria-label": "Base model and fine-tuned answers" });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void ask(jobId, prompt.value, Number(maxTokens.value) || 32, answer, send);
  });
  void showComparison(jobId, compare);
  return h("div", { class: "playground" }, h("div", {}, h("h3", {}, "Fine-tuned model"), form, answer), compare);
}

async function ask(jobId: string, text: string, maxTokens: number, target: HTMLElement, send: HTMLButtonElement): Promise<void> {
  send.disabled = true;
  replace(target, h("p", {}, "Asking…"));
  try {
    const job = await api<{ fine_tuned_model: string | null }>("GET", `/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}`);
    const completion = await api<{ choices: { message: { content: string } }[] }>("POST", "/v1/chat/completions", {
      model: job.fine_tuned_model,
      messages: [{ role: "user", content: text }],
      max_tokens: maxTokens,
    });
    replace(target, h("p", {}, h("strong", {}, "Answer: "), h("span", { id: "chat-text" }, completion.choices[0]?.message.content ?? "")));
  } catch (error) {
    replace(target, h("p", { role: "alert" }, `Chat: ${(error as ApiError).message}`));
  } finally {
    send.disabled = false;
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
