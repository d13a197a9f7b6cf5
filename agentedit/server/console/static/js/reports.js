// Reports: the server's own metrics (admin keys) and the eval runs under evals/results/ with their tables and plots.
import { api, blobUrl, h, when, errorBox, table } from "./api.js";
import { markdown } from "./markdown.js";

const ms = (v) => (v == null ? "—" : v.toFixed(1));
const pct = (v) => (v == null ? "—" : (100 * v).toFixed(1) + " %");

async function metrics(box) {
  const m = await api("/ui/api/metrics");
  const chats = m.chats.namespaces;
  const cards = [["Uptime", `${Math.round(m.uptime_s / 60)} min`], ["Requests", m.requests.total.toLocaleString()],
    ["Chats", m.chats.total.toLocaleString()], ["Edits injected", m.chats.edits_applied.toLocaleString()],
    ["Prepare p50 / p95", `${ms(m.latency.prepare.p50_ms)} / ${ms(m.latency.prepare.p95_ms)} ms`],
    ["Model call p50 / p95", `${ms(m.latency.upstream.p50_ms)} / ${ms(m.latency.upstream.p95_ms)} ms`],
    ["Refused (auth)", String(m.auth_failures)]];
  box.replaceChildren(
    h("dl", { class: "cards" }, cards.map(([k, v]) => h("div", {}, h("dt", { text: k }), h("dd", { text: v })))),
    table("Chats per namespace since the server started, and the share answered with at least one edit",
      ["Namespace", "Active edits", "Chats", "With edits", "Applied-edit rate"],
      Object.keys({ ...m.active_edits, ...chats }).sort().map((ns) => [ns, String(m.active_edits[ns] ?? "—"),
        String(chats[ns]?.chats ?? 0), String(chats[ns]?.with_edits ?? 0), pct(chats[ns]?.applied_rate)])),
    table("Requests per route (latency from the server's histograms, ms)", ["Route", "Requests", "2xx", "4xx", "5xx", "p50", "p95", "Mean"],
      m.requests.routes.map((r) => [r.route, String(r.requests), String(r["2xx"] || 0), String(r["4xx"] || 0), String(r["5xx"] || 0),
        ms(r.p50_ms), ms(r.p95_ms), ms(r.mean_ms)])));
}

async function runs(box) {
  const list = await api("/ui/api/reports");
  if (!list.data.length) { box.replaceChildren(h("p", { text: "No eval run under " + list.folder + "." })); return; }
  const files = (r) => {
    const plots = r.files.filter((f) => f.endsWith(".png")).length;
    return [r.files.filter((f) => !f.endsWith(".png")).join(", "), plots ? `${plots} plot${plots > 1 ? "s" : ""}` : ""].filter(Boolean).join(" · ");
  };
  box.replaceChildren(table(`Eval runs under ${list.folder}`, ["Run", "Written", "Files"],
    list.data.map((r) => [h("a", { href: "#/reports/" + encodeURIComponent(r.name), text: r.name }), when(r.modified), files(r)])));
}

async function one(root, name) {
  const r = await api("/ui/api/reports/" + encodeURIComponent(name));
  root.append(h("p", {}, h("a", { href: "#/reports", text: "← Reports" })), h("h1", { text: `Eval run ${name}` }));
  for (const [file, text] of Object.entries(r.markdown)) root.append(h("section", { class: "md", "aria-label": file }, h("h2", { text: file }), markdown(text, file)));
  for (const plot of r.plots) {
    const img = h("img", { alt: `Plot ${plot} of run ${name}` });
    root.append(h("figure", {}, img, h("figcaption", { text: plot })));
    blobUrl(`/ui/api/reports/${encodeURIComponent(name)}/files/${encodeURIComponent(plot)}`).then((u) => { img.src = u; }).catch((err) => img.replaceWith(errorBox(err)));
  }
  if (r.results) root.append(h("details", {}, h("summary", { text: "results.json" }), h("pre", { class: "json", tabindex: 0, text: JSON.stringify(r.results, null, 2).slice(0, 60000) })));
  else if (r.results_too_big) root.append(h("p", { class: "hint", text: "results.json is too big to show here." }));
}

export async function render(root, ctx, name) {
  if (name) return one(root, name);
  const mbox = h("div"), rbox = h("div");
  root.append(h("h1", { text: "Reports" }), h("h2", { text: "This server" }), mbox, h("h2", { text: "Eval runs" }), rbox);
  if (ctx.isAdmin) metrics(mbox).catch((err) => mbox.replaceChildren(errorBox(err)));
  else mbox.append(h("p", { class: "hint", text: "The server's metrics need an admin key." }));
  await runs(rbox);
}
