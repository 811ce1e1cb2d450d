// Who calls the API: nobody (local, no tokens), an API token the user pastes (local with
// tokens), or a Cognito user signed in through the hosted UI (authorization code + PKCE).
// Everything lives in sessionStorage: it ends with the tab and is never sent to a third party.
import type { AuthConfig, CognitoAuth } from "./config";

const TOKEN_KEY = "whetstone.token";
const EXPIRES_KEY = "whetstone.token.expires";
const VERIFIER_KEY = "whetstone.pkce.verifier";
const STATE_KEY = "whetstone.pkce.state";

let auth: AuthConfig = { type: "none" };

export function useAuth(config: AuthConfig): void {
  auth = config;
}

export function authType(): AuthConfig["type"] {
  return auth.type;
}

export function bearer(): string | null {
  const expires = Number(sessionStorage.getItem(EXPIRES_KEY) ?? "0");
  if (expires && Date.now() >= expires) forget();
  return sessionStorage.getItem(TOKEN_KEY);
}

export function needsSignIn(): boolean {
  return auth.type !== "none" && bearer() === null;
}

export function useToken(token: string, expiresInS = 0): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  if (expiresInS) sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + expiresInS * 1000));
  else sessionStorage.removeItem(EXPIRES_KEY);
}

function forget(): void {
  for (const key of [TOKEN_KEY, EXPIRES_KEY]) sessionStorage.removeItem(key);
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The S256 code challenge of a PKCE verifier (RFC 7636). */
export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Off to the Cognito hosted UI; it comes back to redirectUri with ?code=&state=. */
export async function beginSignIn(): Promise<void> {
  if (auth.type !== "cognito") return;
  const verifier = randomString();
  const state = randomString();
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  sessionStorage.setItem(STATE_KEY, state);
  const query = new URLSearchParams({
    response_type: "code",
    client_id: auth.clientId,
    redirect_uri: auth.redirectUri,
    scope: auth.scopes.join(" "),
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${auth.domain}/oauth2/authorize?${query}`);
}

/** On the way back from the hosted UI: the code exchanged for tokens, after the state check.
 * Returns an error message, or null when there was nothing to do or it worked. */
export async function completeSignIn(): Promise<string | null> {
  if (auth.type !== "cognito") return null;
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (!code && !params.get("error")) return null;
  history.replaceState(null, "", location.pathname + location.hash);
  if (params.get("error")) return `sign-in failed: ${params.get("error_description") ?? params.get("error")}`;
  const expected = sessionStorage.getItem(STATE_KEY);
  const verifier = sessionStorage.getItem(VERIFIER_KEY);
  sessionStorage.removeItem(STATE_KEY);
  sessionStorage.removeItem(VERIFIER_KEY);
  if (!expected || params.get("state") !== expected || !verifier) {
    return "sign-in failed: the answer does not match the request this tab made (state)";
  }
  return exchange(auth, code as string, verifier);
}

async function exchange(cognito: CognitoAuth, code: string, verifier: string): Promise<string | null> {
  const response = await fetch(`${cognito.domain}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: cognito.clientId,
      code,
      redirect_uri: cognito.redirectUri,
      code_verifier: verifier,
    }),
  });
  if (!response.ok) return `sign-in failed: the token exchange answered HTTP ${response.status}`;
  const tokens = (await response.json()) as { id_token?: string; access_token?: string; expires_in?: number };
  // The API's authorizer reads the ID token's claims (organization, user).
  const token = tokens.id_token ?? tokens.access_token;
  if (!token) return "sign-in failed: the token exchange returned no token";
  useToken(token, tokens.expires_in ?? 3600);
  return null;
}

export function signOut(): void {
  forget();
  if (auth.type === "cognito") {
    const query = new URLSearchParams({ client_id: auth.clientId, logout_uri: auth.redirectUri });
    location.assign(`${auth.domain}/logout?${query}`);
  } else {
    location.hash = "#/signin";
  }
}
