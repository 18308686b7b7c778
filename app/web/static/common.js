// Shared by the console and the dashboard: the API client, sign-in, messages and a safe
// element builder. Item text is untrusted: it only ever reaches the page as a text node.

const KEY_STORAGE = "andon.apiKey";
export const QUEUES = ["product", "marketing", "sales", "service"];
export const ALL_QUEUES = [...QUEUES, "triage"];

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export function forgetKey() {
  storeKey(null);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json, application/problem+json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { title: "Network error" });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function when(value) {
  if (!value) return "";
  const date = new Date(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function clock(value) {
  return new Date(value).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function ago(value) {
  if (!value) return "–";
  const minutes = Math.max(0, Math.round((Date.now() - new Date(value).getTime()) / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} d`;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(undefined, {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  });
}

export function percent(value) {
  if (value === null || value === undefined) return "–";
  return `${Math.round(value * 100)}%`;
}

/** What a person should read for an API error: one sentence that says what to do. */
export function explain(error, action = "That") {
  if (!(error instanceof ApiError)) return `${action} failed: ${error.message || error}`;
  const problem = error.problem;
  const detail = problem.detail ? ` (${problem.detail})` : "";
  switch (error.status) {
    case 0:
      return "Andon could not be reached. Check the connection and try again.";
    case 401:
      return "Your API key was not accepted: it is missing, wrong or revoked. Sign in again.";
    case 403:
      return `Your key is not allowed to do this${detail}. Ask an admin for the right role or queue scope.`;
    case 404:
      return `Not found${detail}.`;
    case 409: {
      if (problem.held_by) {
        const until = problem.lease_expires_at ? ` until ${clock(problem.lease_expires_at)}` : "";
        return `This item is held by ${problem.held_by}${until}. Take the next one.`;
      }
      return `That is no longer possible${detail}. The item may have moved on; take the next one.`;
    }
    case 429:
      if (problem.limit === "agent") {
        return "You have reached your work-in-progress limit. Resolve or release an item before claiming another.";
      }
      if (problem.limit === "queue") {
        return "This queue has reached its work-in-progress limit. Try again when a colleague finishes an item.";
      }
      return `Too many requests${detail}. Wait a moment and try again.`;
    case 422:
      return `Check the form${detail}.`;
    default:
      if (error.status >= 500) return `The server had a problem (${error.status}). Try again in a moment.`;
      return `${action} failed${detail}.`;
  }
}

/**
 * Build an element. Children that are strings become text nodes, so data never becomes markup.
 * Attributes are set one by one; `href` only accepts http(s) and same-site paths.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "href") {
      const href = safeHref(value);
      if (href) node.setAttribute("href", href);
    } else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function safeHref(value) {
  if (typeof value !== "string") return null;
  if (value.startsWith("/") && !value.startsWith("//")) return value;
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

let statusTimer = null;

/** A polite, passing message (screen readers read it; it fades after a while). */
export function say(message) {
  const status = $("status");
  status.textContent = message;
  status.classList.add("shown");
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => status.classList.remove("shown"), 6000);
}

/** An error that stays until the next action. */
export function warn(message) {
  const alert = $("alert");
  alert.textContent = message;
  alert.hidden = !message;
}

export function unwarn() {
  warn("");
}

/** A panel that an optional API does not provide (yet): say so rather than show nothing. */
export function unavailable(node, what) {
  clear(node).append(
    h("p", { class: "unavailable", "data-state": "unavailable" }, `${what} is not available on this server yet.`),
  );
}

/**
 * Sign in: ask for a key until GET /auth/whoami accepts it. Resolves with the principal, or with
 * null when the server has no authentication at all (then the page works without a key).
 */
export async function signIn({ required = true, why = null } = {}) {
  const form = $("signin-form");
  const section = $("signin");
  const input = $("api-key");
  if (apiKey()) {
    try {
      const me = await api("GET", "/auth/whoami");
      showWho(me);
      return me;
    } catch (error) {
      if (error.status === 404) return required ? noAuth() : null;
      if (error.status !== 401) throw error;
      storeKey(null);
      warn(explain(error));
    }
  } else if (!required) {
    return null;
  }
  if (why) $("signin-why").textContent = why;
  section.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      storeKey(key);
      try {
        const me = await api("GET", "/auth/whoami");
        input.value = "";
        section.hidden = true;
        unwarn();
        showWho(me);
        resolve(me);
      } catch (error) {
        storeKey(null);
        if (error.status === 404) {
          section.hidden = true;
          resolve(required ? noAuth() : null);
          return;
        }
        warn(explain(error, "Sign-in"));
        input.select();
      }
    };
  });
}

function noAuth() {
  warn("This server has no sign-in yet (GET /auth/whoami is missing), so queues cannot be claimed.");
  return null;
}

function showWho(me) {
  $("who").hidden = false;
  $("who-name").textContent = `${me.name} · ${me.role}`;
  $("sign-out").onclick = () => {
    storeKey(null);
    window.location.reload();
  };
}

/** Keystrokes typed into a field belong to the field. */
export function typing(event) {
  const target = event.target;
  return (
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable)
  );
}
