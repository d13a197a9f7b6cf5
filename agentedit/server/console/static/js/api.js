// Calls to the server (key and namespace in headers, never in the URL), and small DOM helpers.
const KEY = "agentedit.key";
const NS = "agentedit.namespace";

export const store = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(v) { v ? sessionStorage.setItem(KEY, v) : sessionStorage.removeItem(KEY); },
  get namespace() { return sessionStorage.getItem(NS); },
  set namespace(v) { v ? sessionStorage.setItem(NS, v) : sessionStorage.removeItem(NS); },
};

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

function headers(extra, withNamespace) {
  const out = { ...extra };
  if (store.key) out.Authorization = "Bearer " + store.key;
  if (withNamespace && store.namespace) out["x-agentedit-namespace"] = store.namespace;
  return out;
}

async function failure(r) {
  let message = r.status + " " + r.statusText, code = null;
  try { const e = (await r.json()).error || {}; message = e.message || message; code = e.code || null; } catch (_) { /* not JSON */ }
  return new ApiError(r.status, message, code);
}

// JSON in, JSON out. opts: method, body (JSON-encoded unless raw), raw (bytes as they are), headers, namespace.
export async function api(path, opts = {}) {
  const { method = "GET", body, raw = false, namespace = true } = opts;
  const h = headers(opts.headers || {}, namespace);
  let payload = body;
  if (body !== undefined && !raw) { h["content-type"] = "application/json"; payload = JSON.stringify(body); }
  const r = await fetch(path, { method, headers: h, body: payload, cache: "no-store", credentials: "omit" });
  if (!r.ok) throw await failure(r);
  return r.status === 204 ? null : r.json();
}

// A file the server guards (a plot): fetched with the key, shown through an object URL.
export async function blobUrl(path) {
  const r = await fetch(path, { headers: headers({}, true), cache: "no-store", credentials: "omit" });
  if (!r.ok) throw await failure(r);
  return URL.createObjectURL(await r.blob());
}

// h("tag", {attrs}, ...children): attrs "class", "for", "text", on<Event> handlers, booleans; children nodes/strings.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "class") el.className = v;
    else if (k === "for") el.htmlFor = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function field(id, label, input, hint) {
  input.id = id;
  if (!input.name) input.name = id;
  const parts = [h("label", { for: id, text: label }), input];
  if (hint) { const hid = id + "-hint"; input.setAttribute("aria-describedby", hid); parts.push(h("small", { id: hid, class: "hint", text: hint })); }
  return h("div", { class: "field" }, parts);
}

export function when(iso) {
  if (!iso) return "";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function say(message) {
  const s = document.getElementById("status");
  s.textContent = "";
  setTimeout(() => { s.textContent = message; }, 20);
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert", text: err instanceof ApiError ? err.message : "Error: " + err });
}

export function table(caption, columns, rows) {
  return h("table", {},
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((cell) => h("td", {}, cell))))));
}

export function editLink(id) { return h("a", { href: "#/edit/" + encodeURIComponent(id), text: id }); }

export function fact(e) {
  if (!e) return "";
  return e.statement || [e.prompt, e.target_new].filter(Boolean).join(" ");
}
