// The wire models the console reads (the OpenAPI document has them all).
export interface Issue {
  code: string;
  message: string;
  line: number | null;
  row: number | null;
  field: string | null;
}
export interface HistogramBin {
  lower: number;
  upper: number | null;
  count: number;
}
export interface Validation {
  valid: boolean;
  format: string | null;
  kind: string | null;
  num_examples: number;
  errors: Issue[];
  warnings: Issue[];
  stats: {
    bytes_read: number;
    records_read: number;
    invalid_records: number;
    tokens: null | {
      method: string;
      total: number;
      min: number | null;
      max: number | null;
      mean: number | null;
      p50: number | null;
      p95: number | null;
      cutoff_length: number;
      truncated: number;
      truncated_share: number;
      histogram: HistogramBin[];
    };
    duplicates: { exact?: number; near?: number } & Record<string, unknown>;
  };
}
export interface Checkpoint {
  step: number;
  epoch: number;
  eval_loss: number | null;
}
export interface Deployment {
  status: string;
  model: string;
  endpoint: string | null;
  message: string | null;
}
export interface Job {
  job_id: string;
  name: string | null;
  status: string;
  created_at: string;
  spec: { base_model: string; method: string; hardware: { gpu_type: string; gpu_count: number } };
  dataset: { source: string; filename: string | null; num_examples: number | null };
  cost: { current_usd: number; estimated_total_usd: number; hourly_rate_usd: number; compute_hours: number };
  estimate: { estimated_hours: number; estimated_cost_usd: number };
  /** What the trainer runs on, as it reported it once training began; null before. */
  device: { gpu_count: number; gpu_name: string | null } | null;
  progress: { step: number; max_steps: number; epoch: number; fraction: number; eta_seconds: number | null };
  latest_metrics: Record<string, number>;
  checkpoints: Checkpoint[];
  error: { code: string; message: string } | null;
  artifacts: { archives: Record<string, number> } | null;
  deployment: Deployment | null;
}
export interface MetricPoint {
  step: number;
  value: number;
  time: string;
}
export interface LogEntry {
  time: string;
  source: string;
  level: string;
  message: string;
}

export const ENDED = ["completed", "failed", "cancelled"];
export const STATUSES = [
  "pending", "preparing", "building", "deploying", "training", "evaluating",
  "completed", "failed", "stopping", "cancelled", "pausing", "paused",
];
export const METHODS = ["lora", "qlora", "full", "prompt_tuning", "dpo"];

/** What the datasets screen hands to the plan screen: the uploaded file and its report. */
export const draft: { uploadId: string | null; filename: string | null; report: Validation | null } = {
  uploadId: null,
  filename: null,
  report: null,
};
