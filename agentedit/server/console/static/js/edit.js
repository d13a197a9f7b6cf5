// One edit: its parts, history (who, when, what changed), what it superseded, recent questions; change or retract it.
import { api, h, field, when, say, errorBox, table, editLink, fact } from "./api.js";

const SHOWN = ["version", "status", "statement", "subject", "relation", "prompt", "target_new", "target_old", "valid_from", "valid_until", "superseded_by", "supersedes"];

function changes(ev) {
  const before = ev.before || {}, after = ev.after || {};
  const keys = SHOWN.filter((k) => JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null) && k !== "version");
  if (!ev.before) return "created: " + fact(after);
  return keys.map((k) => `${k}: ${before[k] ?? "—"} → ${after[k] ?? "—"}`).join("; ") || "no field changed";
}

function parts(e) {
  const aliases = e.metadata && e.metadata.aliases ? [].concat(e.metadata.aliases).join(", ") : "";
  const items = [["Fact", fact(e)], ["Subject", e.subject], ["Relation", e.relation], ["Prompt", e.prompt], ["Target", e.target_new],
    ["Old target", e.target_old], ["Aliases", aliases], ["Status", e.status], ["Version", String(e.version)], ["Created", when(e.created_at)],
    ["By", e.actor], ["Route", e.method], ["Valid from", e.valid_from], ["Valid until", e.valid_until],
    ["Review", e.needs_review ? "its statement parse waits for review" + (e.metadata.review_reason ? ": " + e.metadata.review_reason : "") : ""]];
  return h("dl", { class: "parts" }, items.filter(([, v]) => v).map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
}

function changeForm(e, reload) {
  const target = h("input", { type: "text", value: e.target_new || "" });
  const statement = h("input", { type: "text", value: e.statement || "" });
  const out = h("div", { "aria-live": "polite" });
  const f = h("form", { class: "stack" }, field("u-target", "New target", target), field("u-statement", "Statement", statement),
    h("button", { type: "submit", text: "Save changes" }), out);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    if (target.value.trim() !== (e.target_new || "")) body.target_new = target.value.trim();
    if (statement.value.trim() !== (e.statement || "")) body.statement = statement.value.trim();
    try {
      await api("/v1/edits/" + encodeURIComponent(e.id), { method: "PATCH", body, headers: { "If-Match": `"${e.version}"` } });
      say("Edit changed");
      reload();
    } catch (err) { out.replaceChildren(errorBox(err)); }
  });
  return h("details", {}, h("summary", { text: "Change this edit" }), f);
}

function retract(e, reload) {
  const out = h("div", { "aria-live": "polite" });
  const confirm = h("button", { type: "button", class: "danger", hidden: true, text: "Yes, retract it" });
  const ask = h("button", { type: "button", class: "danger", text: "Retract edit" });
  ask.addEventListener("click", () => { confirm.hidden = false; confirm.focus(); });
  confirm.addEventListener("click", async () => {
    try {
      await api("/v1/edits/" + encodeURIComponent(e.id), { method: "DELETE", headers: { "If-Match": `"${e.version}"` } });
      say("Edit retracted");
      reload();
    } catch (err) { out.replaceChildren(errorBox(err)); }
  });
  return h("div", { class: "row" }, ask, confirm, out);
}

export async function render(root, ctx, id) {
  const data = await api("/ui/api/edits/" + encodeURIComponent(id));
  const e = data.edit;
  const reload = () => render(root.replaceChildren() || root, ctx, id).catch((err) => root.append(errorBox(err)));
  root.append(h("p", {}, h("a", { href: "#/edits", text: "← Edits" })), h("h1", { text: `Edit ${e.id}` }), parts(e));
  if (ctx.canWrite && e.status === "active") root.append(h("section", { "aria-label": "Actions" }, changeForm(e, reload), retract(e, reload)));
  const rel = [];
  if (data.supersedes) rel.push(h("p", {}, "It superseded ", editLink(data.supersedes.id), `: “${fact(data.supersedes)}” (now ${data.supersedes.status}).`));
  if (data.superseded_by) rel.push(h("p", {}, "It was superseded by ", editLink(data.superseded_by.id), `: “${fact(data.superseded_by)}”.`));
  root.append(h("h2", { text: "Supersession" }), rel.length ? rel : h("p", { text: "It superseded no edit, and none superseded it." }));
  root.append(h("h2", { text: "History" }), table("Changes to this edit and to the edits it superseded, oldest first",
    ["#", "When", "Who", "Action", "Edit", "What changed"],
    data.history.map((ev) => [String(ev.seq), when(ev.at), ev.actor, ev.action, ev.edit_id === e.id ? ev.edit_id : editLink(ev.edit_id), changes(ev)])));
  root.append(h("h2", { text: "Questions recently answered with it" }), data.questions.length
    ? table("Latest chat questions through this server that this edit was applied to (kept in memory since the server started)",
      ["When", "Question", "Mode", "Edits applied"], data.questions.map((q) => [when(q.at), q.question, q.mode, q.applied.join(", ")]))
    : h("p", { text: "No question answered with it since the server started." }));
}
