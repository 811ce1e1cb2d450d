// The console's entry: runtime config, sign-in, and a hash router (#/jobs/ID), so a deep
// link never reaches a server path and every screen is reachable from the header.
import { ApiError, useApiBase } from "./api";
import { authType, beginSignIn, completeSignIn, needsSignIn, signOut, useAuth, useToken } from "./auth";
import { loadConfig } from "./config";
import { button, field, h, notice, replace } from "./dom";
import { datasetsScreen } from "./screens/datasets";
import { jobScreen } from "./screens/job";
import { jobsScreen } from "./screens/jobs";
import { planScreen } from "./screens/plan";
import { statsScreen } from "./screens/stats";
import "./style.css";

const main = document.getElementById("main") as HTMLElement;
const session = document.getElementById("session") as HTMLElement;
let generation = 0;

function signInScreen(message: string | null): void {
  if (authType() === "cognito") {
    replace(main, h("h1", {}, "Sign in"), message && notice(message, "error"), button("Sign in", () => void beginSignIn(), { id: "sign-in" }));
    return;
  }
  const token = h("input", { type: "password", id: "token", autocomplete: "off", required: true });
  const form = h(
    "form",
    { id: "token-form" },
    field("API token", token, "`whet token create` makes one; it stays in this tab only."),
    h("button", { type: "submit" }, "Use this token"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    useToken(token.value);
    location.hash = "#/jobs";
    route();
  });
  replace(main, h("h1", {}, "Sign in"), message && notice(message, "error"), form);
}

function drawSession(): void {
  replace(session, authType() === "none" || needsSignIn() ? null : button("Sign out", signOut, { id: "sign-out" }));
}

function route(): void {
  generation += 1;
  const mine = generation;
  const alive = () => mine === generation;
  drawSession();
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/jobs").split("/").filter(Boolean);
  if (needsSignIn() || parts[0] === "signin") return signInScreen(null);
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", `#/${parts[0]}` === link.getAttribute("href"));
  }
  const failed = (error: unknown) => {
    if (alive()) replace(main, notice(error instanceof ApiError ? error.message : String(error), "error"));
  };
  try {
    if (parts[0] === "datasets") datasetsScreen(main);
    else if (parts[0] === "plan") planScreen(main).catch(failed);
    else if (parts[0] === "stats") statsScreen(main).catch(failed);
    else if (parts[0] === "jobs" && parts[1]) jobScreen(main, decodeURIComponent(parts[1]), alive).catch(failed);
    else jobsScreen(main, alive, new URLSearchParams(search ?? ""));
  } catch (error) {
    failed(error);
  }
  main.focus({ preventScroll: true });
}

async function start(): Promise<void> {
  try {
    const config = await loadConfig();
    useApiBase(config.apiBaseUrl);
    useAuth(config.auth);
    const problem = await completeSignIn();
    window.addEventListener("whetstone:unauthorized", () => signInScreen("The API refused the token; sign in again."));
    window.addEventListener("hashchange", route);
    if (problem) signInScreen(problem);
    else route();
  } catch (error) {
    replace(main, notice(`The console could not start: ${String(error)}`, "error"));
  }
}

void start();
