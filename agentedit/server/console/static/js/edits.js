// The Edits page: filter and page through a namespace's edits; create one; import a file.
import { api, h, field, when, say, errorBox, table, editLink, fact } from "./api.js";

const PAGE = 50;
let filters = { subject: "", text: "", status: "active", review: false, since: "", until: "" };
let offsets = [0];  // the start of each page seen, for "Previous"

function query(offset) {
  const q = new URLSearchParams({ limit: PAGE, offset, status: filters.status });
  for (const k of ["subject", "text", "since", "until"]) if (filters[k]) q.set(k, filters[k]);
  if (filters.review) q.set("review", "true");
  return "/ui/api/edits?" + q;
}

function filterForm(onApply) {
  const f = h("form", { class: "filters", role: "search", "aria-label": "Filter edits" });
  const subject = h("input", { type: "search", value: filters.subject });
  const text = h("input", { type: "search", value: filters.text });
  const status = h("select", {}, h("option", { value: "active", text: "Active" }), h("option", { value: "all", text: "All (superseded, retracted too)" }));
  status.value = filters.status;
  const review = h("input", { type: "checkbox", checked: filters.review });
  const since = h("input", { type: "date", value: filters.since });
  const until = h("input", { type: "date", value: filters.until });
  f.append(field("f-subject", "Subject (exact)", subject), field("f-text", "Text contains", text),
    field("f-status", "Status", status),
    h("div", { class: "field check" }, review, h("label", { for: "f-review", text: "Flagged for review" })),
    field("f-since", "Created from", since), field("f-until", "Created until", until),
    h("div", { class: "field actions" }, h("button", { type: "submit", text: "Search" }),
      h("button", { type: "button", class: "secondary", text: "Clear", onclick: () => {
        filters = { subject: "", text: "", status: "active", review: false, since: "", until: "" };
        for (const input of [subject, text, since, until]) input.value = "";
        status.value = "active"; review.checked = false;
        onApply(true);
      } })));
  review.id = "f-review";
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    filters = { subject: subject.value.trim(), text: text.value.trim(), status: status.value, review: review.checked, since: since.value, until: until.value };
    onApply(true);
  });
  return f;
}

function rows(data) {
  return data.map((e) => [editLink(e.id), e.subject || "", e.relation || e.prompt || "", e.target_new || "",
    h("span", { class: "badge " + e.status, text: e.status }), e.needs_review ? h("span", { class: "badge review", text: "review" }) : "",
    when(e.created_at), String(e.version)]);
}

async function results(box, ctx) {
  const offset = offsets[offsets.length - 1];
  box.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
  const page = await api(query(offset));
  const first = page.data.length ? offset + 1 : 0;
  const range = page.total != null ? `${first.toLocaleString()}–${(offset + page.data.length).toLocaleString()} of ${page.total.toLocaleString()}`
    : `${page.data.length} shown (rows ${(offset + 1).toLocaleString()}–${page.next_offset.toLocaleString()} read)`;
  const prev = h("button", { type: "button", class: "secondary", disabled: offsets.length === 1, text: "Previous page",
    onclick: () => { offsets.pop(); results(box, ctx); } });
  const next = h("button", { type: "button", class: "secondary", disabled: !page.has_more, text: "Next page",
    onclick: () => { offsets.push(page.next_offset); results(box, ctx); } });
  const t = page.data.length ? table(`Edits in ${ctx.namespace}: ${range}`, ["Id", "Subject", "Relation", "Target", "Status", "Review", "Created", "Version"], rows(page.data))
    : h("p", { text: "No edits match." + (page.has_more ? " More rows remain: go to the next page." : "") });
  box.replaceChildren(t, h("nav", { class: "pager", "aria-label": "Pages of edits" }, prev, h("span", { text: range }), next));
  say(`${page.data.length} edits shown`);
}

function createForm(ctx, reload) {
  const out = h("div", { "aria-live": "polite" });
  const statement = h("textarea", { rows: 2 });
  const prompt = h("input", { type: "text" });
  const subject = h("input", { type: "text" });
  const target = h("input", { type: "text" });
  const f = h("form", { class: "stack" },
    field("c-statement", "Statement", statement, "A plain sentence (\"Acme's CEO is Bob Jones\"), or fill the three fields below instead."),
    h("div", { class: "row" }, field("c-prompt", "Prompt", prompt, "e.g. The CEO of Acme is"),
      field("c-subject", "Subject", subject), field("c-target", "New target", target)),
    h("button", { type: "submit", text: "Create edit" }), out);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = statement.value.trim() ? { statement: statement.value.trim() }
      : { prompt: prompt.value.trim(), subject: subject.value.trim() || undefined, target_new: target.value.trim() };
    try {
      const rec = await api("/v1/edits", { method: "POST", body });
      const notes = [];
      if (rec.supersedes) notes.push(" It supersedes ", editLink(rec.supersedes), ".");
      if (rec.conflicts && rec.conflicts.length) notes.push(` ${rec.conflicts.length} possible conflict(s): see Conflicts and review.`);
      out.replaceChildren(h("p", { class: "ok" }, "Created ", editLink(rec.id), ".", ...notes));
      f.reset();
      say("Edit created");
      reload();
    } catch (err) { out.replaceChildren(errorBox(err)); }
  });
  return h("details", {}, h("summary", { text: "Create an edit" }), f);
}

function importForm(ctx, reload) {
  const file = h("input", { type: "file", accept: ".jsonl,.json,.csv" });
  const bar = h("progress", { max: 100, value: 0, "aria-label": "Import progress" });
  const out = h("div", { "aria-live": "polite" });
  const f = h("form", { class: "stack" },
    field("i-file", "Edits file (.jsonl, .json or .csv)", file, "One edit per line or row: prompt, subject, target_new, or statement. All or nothing: one bad line and nothing is written."),
    h("button", { type: "submit", text: "Import" }), bar, out);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const picked = file.files[0];
    if (!picked) { out.replaceChildren(errorBox("choose a file first")); return; }
    bar.value = 0;
    out.replaceChildren(h("p", { text: `Uploading ${picked.name}…` }));
    try {
      let job = await api("/ui/api/imports?filename=" + encodeURIComponent(picked.name), { method: "POST", body: await picked.arrayBuffer(), raw: true, headers: { "content-type": "application/octet-stream" } });
      while (job.state === "running") {
        if (job.total) { bar.value = Math.round((100 * job.done) / job.total); out.replaceChildren(h("p", { text: `Embedding and writing: ${job.done} of ${job.total}` })); }
        await new Promise((r) => setTimeout(r, 300));
        job = await api("/ui/api/imports/" + job.id);
      }
      if (job.state === "failed") {
        bar.value = 0;
        out.replaceChildren(h("p", { class: "error", role: "alert" }, h("strong", { text: "Import failed; nothing was written. " }), job.error));
        say("Import failed");
      } else {
        bar.value = 100;
        out.replaceChildren(h("p", { class: "ok", text: `Imported ${job.imported} edits from ${job.filename} in ${job.seconds} s.` }));
        say("Import done");
        reload();
      }
    } catch (err) { out.replaceChildren(errorBox(err)); }
  });
  return h("details", {}, h("summary", { text: "Import edits from a file" }), f);
}

export async function render(root, ctx) {
  const box = h("div", { class: "results" });
  const reload = (reset) => { if (reset === true) offsets = [0]; results(box, ctx).catch((err) => box.replaceChildren(errorBox(err))); };
  const tools = ctx.canWrite ? [createForm(ctx, reload), importForm(ctx, reload)] : [h("p", { class: "hint", text: "This key may read edits; a write key creates, changes and imports them." })];
  root.append(h("h1", { text: `Edits · ${ctx.namespace}` }), filterForm((reset) => { reload(reset); }), ...tools, box);
  offsets = [0];
  await results(box, ctx);
}
