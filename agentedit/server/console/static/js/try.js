// Try it: a question or a short conversation, answered without and with the edits, with every scope decision.
import { api, h, field, say, errorBox, table, editLink, fact } from "./api.js";

function messages(text) {
  // "user: ..." / "assistant: ..." lines start turns; a plain text is one user question
  const out = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*(user|assistant|system)\s*:\s*(.*)$/i);
    if (m) out.push({ role: m[1].toLowerCase(), content: m[2] });
    else if (out.length) out[out.length - 1].content += "\n" + line;
    else if (line.trim()) out.push({ role: "user", content: line });
  }
  return out.map((m) => ({ ...m, content: m.content.trim() })).filter((m) => m.content);
}

function answers(r) {
  const col = (title, side, cls) => h("section", { class: "answer " + cls, "aria-label": title },
    h("h3", { text: title }), h("p", { class: "reply", text: side.text }), h("p", { class: "hint", text: `model call: ${side.upstream_ms} ms` }));
  return h("div", { class: "side-by-side" }, col("Without edits", r.without, "without"), col("With edits", r.with, "with"));
}

function result(r) {
  const applied = r.applied.length ? h("p", {}, `Applied (${r.mode}): `, ...r.applied.flatMap((id, i) => [i ? ", " : "", editLink(id)]))
    : h("p", { text: `No edit applied (${r.mode}): the question went to the model untouched.` });
  const cand = r.candidates.length ? table("Candidates retrieved and the scope checker's decision on each",
    ["Edit", "Fact", "Checker", "Decision", "Score", "Reason"],
    r.candidates.map((c) => [editLink(c.edit_id), fact(c.edit), c.checker,
      h("span", { class: "badge " + (c.in_scope ? "active" : "retracted"), text: c.in_scope ? "in scope" : "out of scope" }),
      c.score.toFixed(3), c.reason || ""]))
    : h("p", { text: "The memory retrieved no candidate." });
  const timings = table("Timings (ms)", ["Step", "ms"], Object.entries(r.timings).map(([k, v]) => [k, String(v)]));
  const resolved = r.resolved_query ? h("p", { text: `Follow-up read as: “${r.resolved_query}”` + (r.resolution ? ` (${r.resolution})` : "") }) : "";
  return [h("h2", { text: "Answers" }), answers(r), applied, resolved, h("h2", { text: "Scope decisions" }), cand,
    h("h2", { text: "Request sent to the model (with edits)" }), h("pre", { class: "json", tabindex: 0, text: JSON.stringify(r.with.request, null, 2) }),
    h("h2", { text: "Timings" }), timings];
}

export async function render(root, ctx) {
  const text = h("textarea", { rows: 4, required: true });
  const out = h("div", { "aria-live": "polite" });
  const f = h("form", { class: "stack" },
    field("t-question", "Question or conversation", text, "One question, or turns starting with “user:” and “assistant:” on their own lines. The model is called twice."),
    h("button", { type: "submit", text: "Ask both ways" }));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msgs = messages(text.value);
    if (!msgs.length) { out.replaceChildren(errorBox("type a question first")); return; }
    out.replaceChildren(h("p", { class: "hint", text: "Asking…" }));
    try {
      const r = await api("/ui/api/try", { method: "POST", body: { messages: msgs } });
      out.replaceChildren(...result(r));
      say(r.applied.length ? `${r.applied.length} edit(s) applied` : "No edit applied");
    } catch (err) { out.replaceChildren(errorBox(err)); }
  });
  root.append(h("h1", { text: `Try it · ${ctx.namespace}` }), f, out);
}
