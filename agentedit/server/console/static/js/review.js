// Conflicts and review: possible conflicts between two active edits, and statement parses waiting for review.
import { api, h, when, say, errorBox, table, editLink, fact } from "./api.js";

async function conflicts(box, ctx) {
  if (!ctx.canWrite) { box.replaceChildren(h("p", { class: "hint", text: "Conflicts need a write key." })); return; }
  const list = (await api("/v1/conflicts")).data;
  if (!list.length) { box.replaceChildren(h("p", { text: "No open conflict." })); return; }
  const facts = {};
  await Promise.all(list.flatMap((c) => [c.edit_id, c.other_id]).map(async (id) => {
    try { facts[id] = fact(await api("/v1/edits/" + encodeURIComponent(id))); } catch (_) { facts[id] = "(not found)"; }
  }));
  const out = h("div", { "aria-live": "polite" });
  const resolve = (c, keep, label) => h("button", { type: "button", class: "secondary", text: label, "aria-label": `${label} for conflict ${c.id}`,
    onclick: async () => {
      try {
        await api(`/v1/conflicts/${encodeURIComponent(c.id)}/resolve`, { method: "POST", body: { keep } });
        say(`Conflict ${c.id} resolved`);
        await conflicts(box, ctx);
      } catch (err) { out.replaceChildren(errorBox(err)); }
    } });
  box.replaceChildren(table("Open conflicts: the newer edit may state the same fact as the older one",
    ["Newer edit", "Older edit", "Why", "Score", "Found", "Decide"],
    list.map((c) => [h("span", {}, editLink(c.edit_id), h("br"), facts[c.edit_id]), h("span", {}, editLink(c.other_id), h("br"), facts[c.other_id]),
      c.reason, c.score.toFixed(3), when(c.created_at),
      h("div", { class: "row" }, resolve(c, "new", "Keep newer"), resolve(c, "old", "Keep older"), resolve(c, "both", "Keep both"))])), out);
}

async function parses(box, ctx) {
  const list = (await api("/v1/edits?review=true&limit=100")).data;
  if (!list.length) { box.replaceChildren(h("p", { text: "No statement parse waits for review." })); return; }
  const out = h("div", { "aria-live": "polite" });
  const accept = (e) => h("button", { type: "button", class: "secondary", text: "Parse is right", "aria-label": `Parse of ${e.id} is right`,
    onclick: async () => {
      const metadata = { ...e.metadata };
      metadata.needs_review = false;
      try {
        await api("/v1/edits/" + encodeURIComponent(e.id), { method: "PATCH", body: { metadata }, headers: { "If-Match": `"${e.version}"` } });
        say(`Parse of ${e.id} accepted`);
        await parses(box, ctx);
      } catch (err) { out.replaceChildren(errorBox(err)); }
    } });
  box.replaceChildren(table("Statements whose parse was not confident",
    ["Edit", "Statement", "Subject", "Relation", "Target", "Why", "Decide"],
    list.map((e) => [editLink(e.id), e.statement, e.subject || "", e.relation || "", e.target_new || "",
      (e.metadata && e.metadata.review_reason) || "", ctx.canWrite ? accept(e) : ""])), out);
}

export async function render(root, ctx) {
  const c = h("div"), p = h("div");
  root.append(h("h1", { text: `Conflicts and review · ${ctx.namespace}` }),
    h("h2", { text: "Possible conflicts" }), c, h("h2", { text: "Low-confidence parses" }), p);
  await Promise.all([conflicts(c, ctx).catch((err) => c.replaceChildren(errorBox(err))),
    parses(p, ctx).catch((err) => p.replaceChildren(errorBox(err)))]);
}
