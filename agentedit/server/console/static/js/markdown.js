// A small Markdown reader for the eval reports: headings, paragraphs, lists, pipe tables, code; text only (no HTML).
import { h } from "./api.js";

function inline(text) {
  const out = [];
  const re = /(`[^`]+`|\*\*[^*]+\*\*)/g;
  let last = 0, m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const t = m[0];
    out.push(t.startsWith("`") ? h("code", { text: t.slice(1, -1) }) : h("strong", { text: t.slice(2, -2) }));
    last = m.index + t.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const cells = (line) => line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());

export function markdown(src, caption) {
  const lines = src.split("\n");
  const out = [];
  let i = 0, tables = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const code = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) code.push(lines[i]);
      out.push(h("pre", { tabindex: 0, text: code.join("\n") })); i++; continue;
    }
    const head = line.match(/^(#{1,6})\s+(.*)$/);
    if (head) { out.push(h("h" + Math.min(6, head[1].length + 2), {}, inline(head[2]))); i++; continue; }
    if (line.trim().startsWith("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{2,}/.test(lines[i + 1])) {
      const header = cells(line);
      const body = [];
      for (i += 2; i < lines.length && lines[i].trim().startsWith("|"); i++) body.push(cells(lines[i]));
      tables++;
      out.push(h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": `${caption}, table ${tables}` }, h("table", {},
        h("thead", {}, h("tr", {}, header.map((c) => h("th", { scope: "col" }, inline(c))))),
        h("tbody", {}, body.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c)))))))));
      continue;
    }
    if (/^\s*[-*]\s+/.test(line)) {
      const items = [];
      for (; i < lines.length && /^\s*[-*]\s+/.test(lines[i]); i++) items.push(h("li", {}, inline(lines[i].replace(/^\s*[-*]\s+/, ""))));
      out.push(h("ul", {}, items)); continue;
    }
    if (!line.trim()) { i++; continue; }
    const para = [];
    for (; i < lines.length && lines[i].trim() && !/^(#|\||```|\s*[-*]\s)/.test(lines[i]); i++) para.push(lines[i]);
    if (!para.length) { para.push(line); i++; }
    out.push(h("p", {}, inline(para.join(" "))));
  }
  return out;
}
