// The public REST API (docs/jobs-api.md) and the OpenAI-compatible /v1 routes: nothing else.
import { bearer } from "./auth";

export const FT = "/api/v1/fine-tuning";
let base = "";

export function useApiBase(url: string): void {
  base = url;
}

export interface FieldError {
  loc: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }

  /** The per-field errors of a 422, by dotted location without the `body.` prefix. */
  fieldErrors(): FieldError[] {
    if (!Array.isArray(this.details)) return [];
    return (this.details as FieldError[])
      .filter((d) => typeof d?.loc === "string")
      .map((d) => ({ loc: d.loc.replace(/^body\./, ""), message: d.message }));
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = bearer();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function failure(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    const error = body.error ?? body; // /v1 answers OpenAI's envelope
    if (response.status === 401) window.dispatchEvent(new Event("whetstone:unauthorized"));
    return new ApiError(response.status, error.code ?? "error", error.message ?? text, error.details);
  } catch {
    return new ApiError(response.status, "error", text || `HTTP ${response.status}`, null);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = headers({ "content-type": "application/json" });
  }
  const response = await fetch(base + path, init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export function query(params: Record<string, string | number | null | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "");
  return entries.length ? `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}` : "";
}

/** PUT a file with upload progress (fetch reports none): a presigned URL gets no token. */
export function putWithProgress(
  url: string,
  file: Blob,
  onProgress: (fraction: number) => void,
): Promise<void> {
  const presigned = /^https?:/.test(url);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", presigned ? url : base + url);
    if (!presigned) {
      for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader("content-type", "application/octet-stream");
    }
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () =>
      xhr.status < 300
        ? resolve()
        : reject(new ApiError(xhr.status, "upload_failed", xhr.responseText || `HTTP ${xhr.status}`, null));
    xhr.onerror = () => reject(new ApiError(0, "upload_failed", "the upload was interrupted", null));
    xhr.send(file);
  });
}

/** A file the API answers (an archive), saved by the browser under its own name. */
export async function download(url: string, filename: string): Promise<void> {
  const presigned = /^https?:/.test(url);
  const response = await fetch(presigned ? url : base + url, { headers: presigned ? {} : headers() });
  if (!response.ok) throw await failure(response);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
