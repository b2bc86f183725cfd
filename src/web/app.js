// Shared by Purser's pages: the bearer token, calls to the JSON API and its envelope, and small DOM helpers.
// The token is the platform's own (passed as #token=… by the host app) or one from the development login page.
export function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("purserToken", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("purserToken");
}

export function requireToken() {
  const t = token();
  if (!t) location.href = "/login?next=" + encodeURIComponent(location.pathname);
  return t;
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || "Something went wrong.");
    this.status = status;
    this.code = error.code;
    this.suggestedAction = error.suggestedAction;
  }
}

/** Calls the API and unwraps its envelope: `data` on success, an ApiError otherwise. */
export async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const envelope = await response.json().catch(() => ({ success: false, error: { message: response.statusText } }));
  if (!envelope.success) throw new ApiError(response.status, envelope.error || {});
  return { status: response.status, data: envelope.data };
}

/** Downloads an authenticated file (invoice PDF, CSV export) under `name`. */
export async function download(path, name) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
  if (!response.ok) throw new Error("Download failed: " + response.status);
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(await response.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

export const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children; strings become text, never markup. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  node.append(...children.flat().map((c) => (c instanceof Node ? c : document.createTextNode(String(c ?? "")))));
  return node;
}

/** Minor units as money, by the currency's own decimals (ISO 4217: 0 for JPY, 2 for USD, 3 for KWD). */
export function money(minor, currency) {
  const format = new Intl.NumberFormat("en", { style: "currency", currency });
  return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
}

/** Shows a message in a live region: `kind` is "ok" or "error". */
export function say(region, kind, text, ...extra) {
  region.replaceChildren(el("div", { class: kind, role: kind === "error" ? "alert" : "status" }, text, ...extra));
}

export function table(headings, rows) {
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))))));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
