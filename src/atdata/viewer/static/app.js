// atdata viewer: plain JS over the read-only JSON API. Text is always set through textContent.
"use strict";

const PAGE = 20;
const main = () => document.getElementById("main");

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") e.textContent = v;
    else if (k === "cls") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) {
    if (kid === null || kid === undefined) continue;
    e.appendChild(typeof kid === "string" ? document.createTextNode(kid) : kid);
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) throw new Error(body.error || "HTTP " + r.status);
  return body;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

const num = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? v.toLocaleString() : String(v));
const dsLink = (id, suffix) => "#/d/" + encodeURIComponent(id) + (suffix || "");
const apiPath = (id, suffix) => "api/datasets/" + encodeURIComponent(id) + (suffix || "");

function crumbs(...parts) {
  const c = document.getElementById("crumbs");
  c.textContent = "";
  for (const p of parts) {
    c.appendChild(document.createTextNode(" / "));
    c.appendChild(p.href ? el("a", { href: p.href, text: p.text }) : el("span", { text: p.text }));
  }
}

function fail(err) {
  main().replaceChildren(el("p", { cls: "error", text: String(err.message || err) }));
}

function table(headers, rows, cls) {
  return el("table", { cls: cls || null },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
}

// -- the index -------------------------------------------------------------------------------
async function showIndex() {
  crumbs();
  const data = await api("api/datasets");
  const rows = data.datasets.map((d) => el("tr", { "data-id": d.id },
    el("td", {}, el("a", { href: dsLink(d.id), text: d.name, cls: "ds-link" })),
    el("td", { text: d.version || "" }),
    el("td", { text: d.split || "" }),
    el("td", { cls: "num", text: num(d.samples) }),
    el("td", { cls: "num", text: bytes(d.bytes) }),
    el("td", { text: d.license || "" }),
    el("td", {}, ...(d.tags || []).map((t) => el("span", { cls: "tag", text: t }))),
    el("td", { text: d.description || "" })));
  main().replaceChildren(
    el("h1", { text: "Datasets" }),
    data.datasets.length ? table(["name", "version", "split", "samples", "size", "licence", "tags", "description"], rows, "datasets")
      : el("p", { cls: "muted", text: "No datasets." }));
}

// -- one dataset -----------------------------------------------------------------------------
function histogram(h) {
  const w = 160, ht = 36, n = h.counts.length, max = Math.max(...h.counts, 1);
  const s = svg("svg", { width: w, height: ht, class: "hist", role: "img" });
  h.counts.forEach((c, i) => {
    const bh = Math.max(c ? 1 : 0, Math.round((c / max) * ht));
    s.appendChild(svg("rect", { x: (i * w) / n, y: ht - bh, width: Math.max(1, w / n - 1), height: bh }));
  });
  const t = svg("title", {});
  t.textContent = h.edges[0] + " … " + h.edges[h.edges.length - 1];
  s.appendChild(t);
  return s;
}

function aggText(a) {
  if (a.type === "numeric") return "min " + num(a.min) + " · max " + num(a.max) + " · mean " + (a.mean === null ? "–" : Number(a.mean).toPrecision(4)) + " · n " + num(a.count);
  if (a.type === "set") return (a.all_values || []).join(", ") + (a.cut ? " …" : "");
  if (a.value_counts) {
    const e = Object.entries(a.value_counts), shown = e.slice(0, 12);
    const more = a.cardinality - shown.length;
    return shown.map(([k, v]) => k + " (" + v + ")").join(", ") + (more > 0 ? " … " + more + " more" : "");
  }
  return a.cardinality + " distinct values";
}

async function showDataset(id) {
  const d = await api(apiPath(id));
  crumbs({ text: d.id });
  const parts = [el("h1", { text: d.name + (d.version ? " @" + d.version : "") + (d.split ? " [" + d.split + "]" : "") })];
  if (d.description) parts.push(el("p", { text: d.description }));
  parts.push(el("p", { cls: "muted" },
    num(d.samples) + " samples · " + bytes(d.bytes) + " · " + d.shards_total + " shard(s) · type " + d.sample_type + (d.license ? " · licence " + d.license : "")));
  if ((d.tags || []).length) parts.push(el("p", {}, ...d.tags.map((t) => el("span", { cls: "tag", text: t }))));
  parts.push(el("p", {}, el("a", { href: dsLink(d.id, "/samples"), text: "Browse samples →", id: "browse" })));
  if (d.versions.length > 1) {
    parts.push(el("h2", { text: "Versions" }), el("p", {}, ...d.versions.map((v) =>
      v.id === d.id ? el("b", { text: v.version + " " }) : el("a", { href: dsLink(v.id), text: v.version + " " }))));
  }
  parts.push(el("h2", { text: "Schema" }), table(["field", "type"],
    Object.entries(d.schema).map(([k, t]) => el("tr", {}, el("td", { text: k }), el("td", { cls: "arr", text: t }))), "schema"));
  const m = d.manifest;
  parts.push(el("h2", { text: "Manifest" }));
  if (!m.available) parts.push(el("p", { cls: "muted", text: m.reason }));
  else {
    parts.push(table(["field", "kind", "aggregate", "histogram"], Object.entries(m.fields).map(([k, kind]) => el("tr", {},
      el("td", { text: k }), el("td", { text: kind }),
      el("td", { text: m.aggregates[k] ? aggText(m.aggregates[k]) : "" }),
      el("td", {}, m.histograms[k] ? histogram(m.histograms[k]) : null))), "aggregates"));
  }
  parts.push(el("h2", { text: "Shards" }), table(["shard", "samples", "size", "sha256"], d.shards.map((s) => el("tr", {},
    el("td", { text: s.name }), el("td", { cls: "num", text: num(s.samples) }),
    el("td", { cls: "num", text: bytes(s.bytes) }), el("td", { cls: "arr", text: s.sha256 ? s.sha256.slice(0, 16) + "…" : "" })))));
  if (d.shards_total > d.shards.length) parts.push(el("p", { cls: "muted", text: "… and " + (d.shards_total - d.shards.length) + " more" }));
  main().replaceChildren(...parts);
}

// -- samples and queries ---------------------------------------------------------------------
function cell(c) {
  switch (c.t) {
    case "null": return el("span", { cls: "muted", text: "null" });
    case "str": return el("span", {}, c.v, c.cut ? el("span", { cls: "cut", text: "… (" + c.len + " chars, cut)" }) : null);
    case "bytes": return el("span", { cls: "muted", text: "bytes (" + c.len + ")" });
    case "array": {
      const range = c.min === undefined ? "" : " [" + c.min + " … " + c.max + "]";
      return el("div", { cls: "arr" }, c.dtype + " (" + c.shape.join("×") + ")" + range,
        c.thumb ? el("img", { cls: "thumb", src: c.thumb, alt: c.dtype + " " + c.shape.join("x"), loading: "lazy" }) : null);
    }
    case "list": return el("span", { cls: "arr" }, "[" + c.v.map(plain).join(", ") + "]", c.cut ? el("span", { cls: "cut", text: "… (" + c.len + " items)" }) : null);
    case "dict": return el("span", { cls: "arr" }, "{" + Object.entries(c.v).map(([k, v]) => k + ": " + plain(v)).join(", ") + "}", c.cut ? el("span", { cls: "cut", text: "… (" + c.len + " keys)" }) : null);
    case "obj": return el("span", { cls: "arr" }, c.v, c.cut ? el("span", { cls: "cut", text: "(cut)" }) : null);
    default: return el("span", { text: String(c.v) });
  }
}

function plain(c) {
  if (c.t === "str") return JSON.stringify(c.v) + (c.cut ? "…" : "");
  if (c.t === "array") return c.dtype + "(" + c.shape.join("×") + ")";
  if (c.t === "bytes") return "bytes(" + c.len + ")";
  if (c.t === "list") return "[" + c.v.map(plain).join(", ") + (c.cut ? ", …" : "") + "]";
  if (c.t === "dict") return "{…}";
  return String(c.v);
}

async function showSamples(id, params) {
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const where = params.get("where") || "";
  const q = "?offset=" + offset + "&length=" + PAGE;
  const page = where ? await api(apiPath(id, "/query") + q + "&where=" + encodeURIComponent(where))
    : await api(apiPath(id, "/samples") + q);
  crumbs({ text: id, href: dsLink(id) }, { text: "samples" });
  const input = el("input", { name: "where", id: "where", placeholder: "SQL over the manifest, e.g. label = 'cat' AND score > 0.5", value: where });
  const form = el("form", { cls: "query", id: "query-form", onsubmit: (ev) => {
    ev.preventDefault();
    const w = input.value.trim();
    location.hash = dsLink(id, "/samples") + (w ? "?where=" + encodeURIComponent(w) : "");
  } }, input, el("button", { type: "submit", text: "Query" }));
  const fields = [];
  for (const r of page.rows) for (const k of Object.keys(r.cells)) if (!fields.includes(k)) fields.push(k);
  const rows = page.rows.map((r) => el("tr", { "data-key": r.key || "" },
    el("td", { cls: "num", text: String(r.i) }), el("td", { cls: "arr", text: r.key || "" }),
    ...(r.error ? [el("td", { cls: "error", colspan: String(Math.max(1, fields.length)), text: r.error })]
      : fields.map((f) => el("td", {}, r.cells[f] ? cell(r.cells[f]) : null)))));
  const go = (o) => { location.hash = dsLink(id, "/samples") + "?offset=" + o + (where ? "&where=" + encodeURIComponent(where) : ""); };
  const end = page.offset + page.length;
  const pager = el("div", { cls: "pager" },
    el("button", { id: "prev", text: "← previous", disabled: offset > 0 ? null : "disabled", onclick: () => go(Math.max(0, offset - PAGE)) }),
    el("span", { id: "range", text: (page.length ? page.offset + 1 : 0) + "–" + end + " of " + num(page.total) + (where ? " matching" : "") }),
    el("button", { id: "next", text: "next →", disabled: page.next_offset === null ? "disabled" : null, onclick: () => go(page.next_offset) }));
  const stats = page.stats ? el("p", { cls: "muted", id: "stats", text: "shards: " + page.stats.shards_scanned + " scanned, " + page.stats.shards_pruned + " pruned of " + page.stats.shards_total }) : null;
  main().replaceChildren(el("h1", { text: id }), form, stats, pager,
    table(["#", "key", ...fields], rows, "samples"),
    page.truncated ? el("p", { cls: "muted", text: "(the page was cut to keep the response small)" }) : null);
}

// -- routing ---------------------------------------------------------------------------------
let routeGen = 0; // only the newest navigation marks the page ready

async function route() {
  const gen = ++routeGen;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = hash.split("?");
  const params = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean);
  main().replaceChildren(el("p", { cls: "muted", text: "Loading…" }));
  document.body.dataset.ready = "0";
  try {
    if (parts[0] === "d" && parts.length >= 2) {
      const id = decodeURIComponent(parts[1]);
      if (parts[2] === "samples") await showSamples(id, params);
      else await showDataset(id);
    } else await showIndex();
  } catch (err) {
    fail(err);
  }
  if (gen === routeGen) document.body.dataset.ready = "1";
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
