// The runtime config next to index.html: `whet serve` answers it in local, the aws deploy
// writes it into the bucket. docs/console.md holds the contract.
export interface CognitoAuth {
  type: "cognito";
  domain: string;
  clientId: string;
  redirectUri: string;
  scopes: string[];
}
export type AuthConfig = { type: "none" } | { type: "token" } | CognitoAuth;

export interface RuntimeConfig {
  runtime: "local" | "aws";
  apiBaseUrl: string;
  auth: AuthConfig;
}

export async function loadConfig(): Promise<RuntimeConfig> {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = (await response.json()) as RuntimeConfig;
  return { ...config, apiBaseUrl: config.apiBaseUrl.replace(/\/+$/, "") };
}
