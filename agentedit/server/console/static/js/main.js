// Login, the namespace picker and the hash router (#/edits, #/edit/<id>, #/try, #/review, #/reports[/<run>]).
import { api, ApiError, store, h, errorBox } from "./api.js";
import * as edits from "./edits.js";
import * as edit from "./edit.js";
import * as tryit from "./try.js";
import * as review from "./review.js";
import * as reports from "./reports.js";

const $ = (id) => document.getElementById(id);
let session = null;

const PAGES = { edits, edit, try: tryit, review, reports };

function showLogin(message) {
  session = null;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("page").replaceChildren();
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("key").value = "";
  $("key").focus();
}

async function start() {
  try {
    session = await api("/ui/api/session", { namespace: false });
  } catch (err) {
    const hadKey = Boolean(store.key);
    store.key = null;
    if (hadKey) return showLogin("That key was refused: " + err.message);
    return showLogin(err instanceof ApiError && err.status === 401 ? "" : err.message);
  }
  if (!store.namespace || !session.namespaces.includes(store.namespace)) store.namespace = session.namespace;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("role").textContent = session.name + " · " + session.role;
  $("logout").hidden = !session.auth;
  const sel = $("ns");
  sel.replaceChildren(...session.namespaces.map((n) => h("option", { value: n, text: n })));
  sel.value = store.namespace;
  route();
}

function route() {
  if (!session) return;
  const hash = location.hash.replace(/^#\/?/, "") || "edits";
  const [name, ...rest] = hash.split("/");
  const page = PAGES[name] ? name : "edits";
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.page === page || (page === "edit" && a.dataset.page === "edits");
    current ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current");
  }
  const root = h("div", { class: "page" });
  $("page").replaceChildren(root);
  const ctx = { session, namespace: store.namespace, canWrite: session.role !== "query", isAdmin: session.role === "admin" };
  Promise.resolve(PAGES[page].render(root, ctx, rest.map(decodeURIComponent).join("/")))
    .catch((err) => {
      if (err instanceof ApiError && err.status === 401) { store.key = null; showLogin(err.message); return; }
      root.append(errorBox(err));
    })
    .finally(() => { const h1 = root.querySelector("h1"); if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); } });
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  store.key = key;
  start();
});
$("logout").addEventListener("click", () => { store.key = null; store.namespace = null; showLogin("Logged out."); });
$("ns").addEventListener("change", (ev) => {
  store.namespace = ev.target.value;
  if (location.hash.startsWith("#/edit/")) location.hash = "#/edits"; else route();
});
window.addEventListener("hashchange", route);
start();
