"""The explorer's browser code: one library (``window.embedlabExplorer``), inlined once per
report by :mod:`embedlab.report.html`; the explorer's callbacks only call it.

Kept in one place so that the search rules, the neighbour search (the same candidates, ties
and exclusions as ``embedlab neighbors``), the colours and the legend are written once. Every
string from data that reaches HTML goes through ``esc``.
"""

from __future__ import annotations

LIBRARY = r"""
window.embedlabExplorer = (() => {
"use strict";

const get = (s, f) => (s.data instanceof Map ? s.data.get(f) : s.data[f]);
const setData = (s, obj) => { s.data = (s.data instanceof Map) ? new Map(Object.entries(obj)) : obj; };
// A table's source: emptied first, then filled. Bokeh >= 3.4's DataTable redraws only when its
// view's indices change, so new rows of the same count would stay undrawn (the stale table).
const setTable = (s, obj) => {
  s.selected.indices = [];
  setData(s, Object.fromEntries(Object.keys(obj).map((f) => [f, []])));
  setData(s, obj);
};
const patchData = (s, patch) => {
  const d = (s.data instanceof Map) ? Object.fromEntries(s.data) : Object.assign({}, s.data);
  setData(s, Object.assign(d, patch));
};
// A key of the settings' objects (built from column names: "constructor" is one), own keys only.
const own = (o, k) => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);
const esc = (t) => String(t).replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// Text as EmbeddingTable.find compares it (embedlab/run.py normalise_text, title_core):
// lower case, accents and punctuation dropped, spaces collapsed; a title without its year
// and its leading or trailing article.
const norm = (t) => String(t).normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase()
  .replace(/[^\p{L}\p{N}]+/gu, " ").trim();
const ARTICLES = ["the", "a", "an", "la", "le", "les", "il", "el", "der", "die", "das"];
const titleCore = (t) => {
  const core = String(t).replace(/\s*\((?:\d{4}|\d{4}[-–]\d{0,4})\)\s*$/, "");
  let words = norm(core).split(" ").filter((w) => w);
  if (words.length > 1 && ARTICLES.includes(words[words.length - 1]) && /,\s*\w+\s*$/.test(core)) words = words.slice(0, -1);
  else if (words.length > 1 && ARTICLES.includes(words[0])) words = words.slice(1);
  return words.join(" ");
};
// Numbers as the report's tables write them (report.html fmt_value): 11,200 · 12.66 · 0.81 · 3e-3.
const fmt = (v) => {
  if (v === null || v === undefined || v === "" || (typeof v === "number" && !isFinite(v))) return "–";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (a >= 10000) return Math.round(v).toLocaleString("en-US");
  if (Number.isInteger(v) || a >= 1000) return String(Math.round(v));
  if (a < 0.01) return v.toExponential(1).replace(".0e", "e").replace("e+", "e");
  if (a < 1) return String(Number(v.toPrecision(2)));
  return v.toFixed(a < 100 ? 2 : 1);
};
const firstValue = (v) => String(v).split("|")[0];

// Rows the query names, best first, by EmbeddingTable.find's rules: the first rule that
// matches decides the best (most observed first, then table order); the list goes on with
// what later rules match, so a short query still offers choices.
function matchRows(cfg, src, query, limit) {
  const text = String(query), qn = norm(text), qk = text.trim().toLowerCase(), qt = titleCore(text);
  if (!text.trim()) return [];
  const labels = get(src, "label"), keys = get(src, "key");
  if (!cfg._norm) {
    cfg._norm = Array.from(labels, norm);
    cfg._title = Array.from(labels, titleCore);
    cfg._keys = Array.from(keys, (k) => String(k).trim().toLowerCase());
  }
  const rules = [(i) => labels[i] === text, (i) => String(keys[i]) === text,
                 (i) => qn !== "" && cfg._norm[i] === qn, (i) => qk !== "" && cfg._keys[i] === qk,
                 (i) => qt !== "" && cfg._title[i] === qt, (i) => qn.length >= 3 && cfg._norm[i].includes(qn)];
  const counts = cfg.count_field ? get(src, cfg.count_field) : null;
  const found = [];
  for (let i = 0; i < labels.length; i++) {
    const s = rules.findIndex((rule) => rule(i));
    if (s >= 0) found.push([s, counts ? -(Number(counts[i]) || 0) : 0, i]);
  }
  found.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  return found.slice(0, limit).map((r) => r[2]);
}

// The settings of the neighbour list: k, metric and minimum count (from the page's widgets).
function settings(cfg, m) {
  const k = parseInt(m.k.value, 10) || cfg.k, metric = m.metric.value || "cosine";
  const minCount = cfg.count_field ? Math.max(0, Number(m.mincount.value) || 0) : 0;
  return {k: k, metric: metric, minCount: minCount};
}

// The k nearest candidates of row, itself excluded: the rule of embedlab neighbors (cosine:
// most similar first; euclidean: closest first; ties: the lower row first). Candidates are the
// observed rows counted at least minCount times. Vectors travel as unit rows (float32) and
// their norms; scores are rounded to float32 as numpy computes them so that ties break alike.
// Tables whose vectors exceed the report's budget carry precomputed lists instead.
function nearest(cfg, m, row, opts) {
  const src = m.points, cand = get(src, "_cand");
  const counts = cfg.count_field ? get(src, cfg.count_field) : null;
  const ok = (i) => cand[i] && (!counts || opts.minCount <= 1 || Number(counts[i]) >= opts.minCount);
  if (cfg.precomputed) {  // explorer.pack_lists: rows in 3 bytes, scores in uint16 steps
    const K = cfg.precomputed.k, e = opts.metric === "euclidean" ? "e" : "c";
    const b = get(m.vectors, e + "_idx"), sc = get(m.scores, e + "_score");
    const [lo, hi] = cfg.precomputed.scales[opts.metric], step = ((hi - lo) || 1) / 65535;
    const out = [];
    for (let j = 0; j < K && out.length < opts.k; j++) {
      const p = 3 * (row * K + j), i = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
      if (i !== 0xFFFFFF && i !== row) out.push([lo + sc[row * K + j] * step, i]);
    }
    return out;
  }
  const vec = get(m.vectors, "v"), norms = get(src, "_norm"), dim = cfg.dim;
  const q = Float64Array.from({length: dim}, (_, d) => vec[row * dim + d]);  // not subarray: Bokeh's
  // typed arrays (NDArray) do not honour its offset
  const nq = norms[row], euclid = opts.metric === "euclidean", sims = [];
  for (let i = 0; i < cand.length; i++) {
    if (i === row || !ok(i)) continue;
    const o = i * dim;
    let s = 0;
    for (let d = 0; d < dim; d++) s += vec[o + d] * q[d];
    s = Math.fround(s);
    if (euclid) s = Math.fround(Math.sqrt(Math.max(0, nq * nq + norms[i] * norms[i] - 2 * nq * norms[i] * s)));
    sims.push([s, i]);
  }
  sims.sort(euclid ? (a, b) => a[0] - b[0] || a[1] - b[1] : (a, b) => b[0] - a[0] || a[1] - b[1]);
  return sims.slice(0, opts.k);
}

// Colours as Bokeh decodes them fastest: 0xRRGGBBAA integers in a typed array (strings are
// parsed one by one, 100 ms a change at 200,000 rows); #rrggbb in, 0 transparent.
const rgba = (hex) => (/^#[0-9a-f]{6}$/i.test(hex) ? (parseInt(hex.slice(1), 16) * 256 + 255) >>> 0 : 0);
const TRANSPARENT = 0;

// Colour of every row for the chosen column, and the legend (outside the plot) that says so.
function colours(cfg, src, name, rows, legend) {
  if (!cfg._rgba) {
    cfg._rgba = {pal: cfg.palette.map(rgba), viridis: cfg.viridis.map(rgba), missing: rgba(cfg.missing_colour),
                 base: rgba(cfg.default_colour)};
  }
  const C = cfg._rgba, out = new Uint32Array(rows.length).fill(C.base);
  const field = own(cfg.fields, name), kind = own(cfg.kinds, name);
  let html = "";
  if (field && kind === "numeric") {
    const vals = get(src, field);
    let lo = Infinity, hi = -Infinity;
    for (const v of vals) { if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    const pal = cfg.viridis, span = (hi - lo) || 1;
    for (let j = 0; j < rows.length; j++) {
      const v = vals[rows[j]];
      out[j] = isFinite(v) ? C.viridis[Math.min(pal.length - 1, Math.floor((v - lo) / span * pal.length))] : C.missing;
    }
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => pal[Math.min(pal.length - 1, Math.floor(t * pal.length))]);
    html = `<div class="legend-title">${esc(name)}</div><div style="display:flex;gap:6px;align-items:stretch">` +
      `<div style="width:14px;height:200px;background:linear-gradient(to top,${stops.join(",")})"></div>` +
      `<div style="display:flex;flex-direction:column;justify-content:space-between;font-size:11px">` +
      `<span>${esc(fmt(hi))}</span><span>${esc(fmt((lo + hi) / 2))}</span><span>${esc(fmt(lo))}</span></div></div>`;
  } else if (field) {
    const vals = get(src, field), freq = new Map();
    for (const v of vals) { const c = firstValue(v); freq.set(c, (freq.get(c) || 0) + 1); }
    const top = Array.from(freq.entries()).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, cfg.palette.length).map((e) => e[0]);
    const index = new Map(top.map((c, i) => [c, i]));
    for (let j = 0; j < rows.length; j++) {
      const i = index.get(firstValue(vals[rows[j]]));
      out[j] = i === undefined ? C.missing : C.pal[i];
    }
    const multi = cfg.multi.includes(name) ? " (first value)" : "";
    html = `<div class="legend-title">${esc(name)}${multi}</div>` + top.map((c, i) =>
      `<div><span style="display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:5px;` +
      `background:${cfg.palette[i]}"></span>${esc(c === "" ? "(none)" : c)} <span style="color:#888">${freq.get(c)}</span></div>`).join("") +
      (freq.size > top.length ? `<div><span style="display:inline-block;width:10px;height:10px;border-radius:5px;` +
        `margin-right:5px;background:${cfg.missing_colour}"></span>other</div>` : "");
  }
  if (cfg._isolated) for (let j = 0; j < rows.length; j++) if (!cfg._isolated.has(rows[j])) out[j] = TRANSPARENT;
  const styled = `<div style="font-size:12px;line-height:1.5;max-height:540px;overflow:auto">${html}</div>`;
  if (legend.text !== styled) legend.text = styled;
  return out;
}

function sizes(cfg, src, on, rows) {
  const out = new Array(rows.length).fill(cfg.point_size);
  if (!on || !cfg.count_field) return out;
  const c = get(src, cfg.count_field);
  let lo = Infinity, hi = -Infinity;
  const s = Array.from(c, (v) => Math.sqrt(Math.max(0, Number(v) || 0)));
  for (const v of s) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  for (let j = 0; j < rows.length; j++) out[j] = 4 + 12 * (s[rows[j]] - lo) / ((hi - lo) || 1);
  return out;
}

// Which labels to write on the map, and on which side of their point: the most observed
// first, each beside its point towards the middle, else on its other side; skipped when it
// would overlap one already placed or run off the plot. Laid out again whenever the map changes.
function labelLayout(cfg, src) {
  const xs = get(src, "x"), ys = get(src, "y");
  if (cfg._layout && cfg._layout.x === xs && cfg._layout.y === ys) return cfg._layout.side;
  const labels = get(src, "label"), counts = cfg.count_field ? get(src, cfg.count_field) : null;
  const ok = Array.from(xs.keys()).filter((i) => isFinite(xs[i]) && isFinite(ys[i]));
  const fx = ok.map((i) => xs[i]).sort((a, b) => a - b), fy = ok.map((i) => ys[i]);
  const x0 = fx[0], x1 = fx[fx.length - 1], y0 = Math.min(...fy), y1 = Math.max(...fy);
  const mid = fx[Math.floor(fx.length / 2)], pw = cfg.plot_width - 90, ph = cfg.plot_height - 90;
  const order = ok.slice().sort((a, b) => (counts ? (Number(counts[b]) || 0) - (Number(counts[a]) || 0) : 0) || a - b);
  const boxes = [], side = new Map();
  for (const i of order) {
    const px = (xs[i] - x0) / ((x1 - x0) || 1) * pw, py = (ys[i] - y0) / ((y1 - y0) || 1) * ph;
    const w = 6 * short(labels[i]).length + 8;
    for (const right of (xs[i] <= mid ? [true, false] : [false, true])) {  // towards the middle first
      const b = [right ? px + 4 : px - 4 - w, right ? px + 4 + w : px - 4, py - 7, py + 7];
      if (b[0] < 0 || b[1] > pw || boxes.some((o) => b[0] < o[1] && o[0] < b[1] && b[2] < o[3] && o[2] < b[3])) continue;
      boxes.push(b);
      side.set(i, right ? "right" : "left");
      break;
    }
  }
  cfg._layout = {x: xs, y: ys, side: side};
  return side;
}
const short = (t) => { const s = String(t); return s.length <= 28 ? s : s.slice(0, 27) + "…"; };
function labelTexts(cfg, src, rows, where) {
  const side = labelLayout(cfg, src), labels = get(src, "label");
  return Array.from(rows, (i) => (side.get(i) === where ? short(labels[i]) : ""));
}

// Show row's neighbours: the table, rings and names on the map, the status line; centre the
// view on it. Each entity shown is a step of the history (back / forward), unless it is one.
function showEntity(cfg, m, row, fromHistory) {
  const src = m.points, labels = get(src, "label"), keys = get(src, "key");
  const opts = settings(cfg, m), found = nearest(cfg, m, row, opts);
  const xs = get(src, "x"), ys = get(src, "y");
  const data = {rank: found.map((_, j) => j + 1), label: found.map((r) => labels[r[1]]),
                key: found.map((r) => String(keys[r[1]])), score: found.map((r) => r[0]), row: found.map((r) => r[1])};
  for (const [f, source] of cfg.neighbour_extra) { const v = get(src, source); data[f] = found.map((r) => v[r[1]]); }
  const title = opts.metric === "euclidean" ? "distance" : "cosine";
  if (m.scorecol.title !== title) m.scorecol.title = title;
  setTable(m.neighbours, data);
  const what = opts.metric === "euclidean" ? "closest by euclidean distance" : "nearest by cosine";
  const among = opts.minCount > 1 ? ` among the ${esc(cfg.table)}s counted at least ${opts.minCount} times` : "";
  m.status.text = `<b>${esc(labels[row])}</b> (${esc(cfg.table)} ${esc(keys[row])}): its ${found.length} ${what}` +
    ` over the full ${cfg.dim}-dimensional vectors${among}${cfg.precomputed ? " (" + esc(cfg.precomputed.short) + ")" : ""}.`;
  const ring = found.map((r) => r[1]), shown = [row].concat(ring).filter((i) => isFinite(xs[i]) && isFinite(ys[i]));
  cfg._shown = {row: row, rows: shown};
  if (!fromHistory) {
    const h = cfg._history || (cfg._history = {rows: [], at: -1});
    if (h.rows[h.at] !== row) { h.rows = h.rows.slice(0, h.at + 1); h.rows.push(row); h.at = h.rows.length - 1; }
  }
  if (isFinite(xs[row]) && isFinite(ys[row])) {
    const xr = m.fig.x_range, yr = m.fig.y_range;
    const w = (xr.end - xr.start) / 2, h = (yr.end - yr.start) / 2;
    xr.setv({start: xs[row] - w, end: xs[row] + w});
    yr.setv({start: ys[row] - h, end: ys[row] + h});
  }
  placeLabels(cfg, m);
}

// Text widths as the canvas draws them (the map's fonts: Bokeh's default, 9pt).
const FONTS = {name: "bold 9pt helvetica, arial, sans-serif", cluster: "italic 9pt helvetica, arial, sans-serif"};
let measurer = null;
function textWidth(text, font) {
  if (!measurer) measurer = document.createElement("canvas").getContext("2d");
  measurer.font = font;
  return measurer.measureText(String(text)).width;
}

// The names on the map and the clusters' labels, laid out in the pixels of the current view so
// that none overlaps another: first the shown entity's name and its neighbours' (rank order),
// each right of its point, else left, else not written; then the clusters' labels, largest
// first, each written only where it overlaps no name, no ring and no cluster label before it.
// Laid out again whenever the view moves (pan, zoom) or the entity changes.
function placeLabels(cfg, m) {
  const xr = m.fig.x_range, yr = m.fig.y_range;
  let pw = cfg.plot_width - 60, ph = cfg.plot_height - 70;
  try { pw = m.fig.inner_width || pw; ph = m.fig.inner_height || ph; } catch (e) { /* not laid out yet */ }
  const sx = (x) => (x - xr.start) / ((xr.end - xr.start) || 1) * pw;
  const sy = (y) => (yr.end - y) / ((yr.end - yr.start) || 1) * ph;
  const boxes = [], PAD = 2, HALF = 9;
  const free = (b) => b[0] >= 0 && b[1] <= pw && b[2] >= 0 && b[3] <= ph &&
    !boxes.some((o) => b[0] < o[1] + PAD && o[0] < b[1] + PAD && b[2] < o[3] + PAD && o[2] < b[3] + PAD);
  const shown = cfg._shown ? cfg._shown.rows : [], xs = get(m.points, "x"), ys = get(m.points, "y");
  const labels = get(m.points, "label"), names = [];
  for (const i of shown) {
    const text = short(labels[i]), w = textWidth(text, FONTS.name) + 4, px = sx(xs[i]), py = sy(ys[i]);
    let side = "";
    for (const s of ["right", "left"]) {
      const b = s === "right" ? [px + 7, px + 9 + w, py - HALF, py + HALF] : [px - 9 - w, px - 7, py - HALF, py + HALF];
      if (free(b)) { boxes.push(b); side = s; break; }
    }
    names.push({side: side, text: text});
  }
  for (const i of shown) boxes.push([sx(xs[i]) - 8, sx(xs[i]) + 8, sy(ys[i]) - 8, sy(ys[i]) + 8]);  // the rings
  const row = cfg._shown ? cfg._shown.row : null;
  const hl = {x: shown.map((i) => xs[i]), y: shown.map((i) => ys[i]),
              role: shown.map((i) => (i === row ? "query" : "neighbour")),
              name_r: names.map((n) => (n.side === "right" ? n.text : "")),
              name_l: names.map((n) => (n.side === "left" ? n.text : ""))};
  const key = JSON.stringify(hl);
  if (cfg._hlKey !== key) { cfg._hlKey = key; setData(m.highlight, hl); }
  if (!m.clusters) return;
  if (!cfg._clusters) cfg._clusters = Object.fromEntries(["x", "y", "text"].map((f) => [f, Array.from(get(m.clusters, f))]));
  const all = cfg._clusters, first = !m.map || m.map.value === Object.keys(cfg.maps)[0];
  const out = {x: first ? all.x : [], y: first ? Array.from(all.y) : [], text: []};
  if (first && !cfg.labels_points) {
    const perPixel = (yr.end - yr.start) / (ph || 1);
    for (let j = 0; j < all.text.length; j++) {  // largest first (explorer.map_clusters' order)
      const w = textWidth(all.text[j], FONTS.cluster) + 4, px = sx(all.x[j]), py = sy(all.y[j]);
      out.text.push("");
      for (const dy of [0, -20, 20, -40, 40]) {  // at the cluster's centre, else just above or below
        const b = [px - w / 2, px + w / 2, py + dy - HALF, py + dy + HALF];
        if (free(b)) { boxes.push(b); out.text[j] = all.text[j]; out.y[j] = all.y[j] - dy * perPixel; break; }
      }
    }
  } else out.text = out.x.map(() => "");
  const ckey = JSON.stringify(out);
  if (cfg._clusterKey !== ckey) { cfg._clusterKey = ckey; setData(m.clusters, out); }
}

// Level of detail while a large map moves (a drag, the wheel): at 200,000 rows each drawn point
// costs ~20 us a frame in software WebGL, and Bokeh's own level of detail is canvas-only; a
// tenth of the points is drawn until the move has ended (a fifth of a second after).
function onMove(cfg, m, moving) {
  if (!m.lod || !m.dots) return;
  clearTimeout(cfg._lodTimer);
  if (moving) {
    if (!m.lod.visible) { m.lod.visible = true; m.dots.visible = false; }
  } else {
    cfg._lodTimer = setTimeout(() => { m.dots.visible = true; m.lod.visible = false; }, 200);
  }
}

// The view moved: lay the labels out again, once per animation frame at most.
function onView(cfg, m) {
  if (cfg._viewPending) return;
  cfg._viewPending = true;
  requestAnimationFrame(() => { cfg._viewPending = false; placeLabels(cfg, m); });
}

// Nothing selected: no neighbours, no rings, no names, the status says what to do.
function clearEntity(cfg, m) {
  setTable(m.neighbours, Object.fromEntries(cfg.neighbour_fields.map((f) => [f, []])));
  cfg._shown = null;
  placeLabels(cfg, m);
  m.status.text = cfg.status_hint;
}

// Selected rows -> the linked table and its one-line summary.
function showSelection(cfg, m, rows) {
  const src = m.points, data = {};
  for (const [f, source] of cfg.selection_fields) { const v = get(src, source); data[f] = rows.map((i) => v[i]); }
  setTable(m.selected, data);
  if (rows.length === 0) { m.summary.text = "Select points with the box or lasso tool to list them here."; return; }
  const parts = [`<b>${rows.length.toLocaleString("en-US")}</b> selected`];
  for (const [name, source] of cfg.summary_numeric) {
    const v = get(src, source); let s = 0, n = 0;
    for (const i of rows) { const x = Number(v[i]); if (isFinite(x)) { s += x; n += 1; } }
    if (n) parts.push(`mean ${esc(name)} ${esc(fmt(s / n))}`);
  }
  for (const [name, source] of cfg.summary_categorical) {
    const v = get(src, source), freq = new Map();
    for (const i of rows) { for (const c of String(v[i]).split("|")) { if (c) freq.set(c, (freq.get(c) || 0) + 1); } }
    const best = Array.from(freq.entries()).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (best) parts.push(`most common ${esc(name)}: ${esc(best[0])} (${Math.round(100 * best[1] / rows.length)}%)`);
  }
  m.summary.text = parts.join(" · ");
}

// Rows whose metadata column (or label, key) matches: /regex/ (case-insensitive), else text
// contained, ignoring case. Every match is selected (the table below lists them).
function filterRows(cfg, src, column, query) {
  const text = String(query).trim();
  if (!text) return [];
  const field = column === "label" || column === "key" ? column : own(cfg.fields, column);
  if (!field) return [];
  let test;
  const re = text.match(/^\/(.+)\/([a-z]*)$/);
  if (re) {
    let rx;
    try { rx = new RegExp(re[1], re[2].includes("i") || !re[2] ? "i" : re[2].replace(/[^gimsuy]/g, "")); }
    catch (e) { return null; }
    test = (v) => rx.test(String(v));
  } else {
    const low = text.toLowerCase();
    test = (v) => String(v).toLowerCase().includes(low);
  }
  const vals = get(src, field), out = [];
  for (let i = 0; i < vals.length; i++) if (vals[i] !== null && vals[i] !== undefined && test(vals[i])) out.push(i);
  return out;
}

function onSearch(cfg, m, query) {
clearTimeout(cfg._typing);
const src = m.points, labels = get(src, "label"), keys = get(src, "key");
const column = m.searchin ? m.searchin.value : cfg.search_default;
if (column !== cfg.search_default || /^\/.+\/[a-z]*$/.test(String(query).trim())) {
  const found = filterRows(cfg, src, column === cfg.search_default ? "label" : column, query);
  if (found === null) { m.status.text = `Not a valid regular expression: “${esc(query)}”.`; return; }
  m.matches.options = found.slice(0, cfg.max_matches).map((i) => [String(i), `${labels[i]} (${keys[i]})`]);
  if (found.length === 0) { if (String(query).trim()) m.status.text = `No ${esc(cfg.table)} matches “${esc(query)}” in ${esc(column)}.`; return; }
  src.selected.indices = found;
  if (found.length > 1) m.status.text = `${found.length.toLocaleString("en-US")} ${esc(cfg.table)}s match “${esc(query)}” in ` +
    `${esc(column)}: selected (the table below lists them; pick one above for its neighbours).`;
  return;
}
const rows = matchRows(cfg, src, query, cfg.max_matches);
m.matches.options = rows.map((i) => [String(i), `${labels[i]} (${keys[i]})`]);
if (rows.length === 0) {
  if (String(query).trim()) m.status.text = `No ${esc(cfg.table)} matches “${esc(query)}”.`;
  return;
}
m.matches.value = String(rows[0]);
src.selected.indices = [rows[0]];
}

// Each key: the search runs once typing pauses (a quarter second), not on every key.
function onTyping(cfg, m, query) {
clearTimeout(cfg._typing);
cfg._typing = setTimeout(() => onSearch(cfg, m, query), cfg.debounce_ms);
}

// Show only the selection (others transparent) and fit the view to it; again: show all.
function onIsolate(cfg, m) {
const rows = Array.from(m.points.selected.indices);
if (cfg._isolated || rows.length === 0) { cfg._isolated = null; m.isolate.label = "isolate selection"; }
else {
  cfg._isolated = new Set(rows);
  m.isolate.label = "show all";
  const xs = get(m.points, "x"), ys = get(m.points, "y");
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const i of rows) if (isFinite(xs[i]) && isFinite(ys[i])) {
    x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]); y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]); }
  if (isFinite(x0)) {
    const px = ((x1 - x0) || 1) * 0.08, py = ((y1 - y0) || 1) * 0.08;
    m.fig.x_range.setv({start: x0 - px, end: x1 + px});
    m.fig.y_range.setv({start: y0 - py, end: y1 + py});
  }
}
restyle(cfg, m, true);
}

function onPick(cfg, m, cb_obj) {
const row = parseInt(cb_obj.value, 10);
if (!isNaN(row) && !(m.points.selected.indices.length === 1 && m.points.selected.indices[0] === row))
  m.points.selected.indices = [row];
}

function onSelect(cfg, m) {
const rows = Array.from(m.points.selected.indices).sort((a, b) => a - b);
const nav = cfg._navigating;
cfg._navigating = false;
showSelection(cfg, m, rows);
if (rows.length === 1) showEntity(cfg, m, rows[0], nav);
else clearEntity(cfg, m);
saveState(cfg, m);
}

// Move to another entity (a neighbour clicked in the table, back, forward).
function moveTo(cfg, m, row, fromHistory) {
  cfg._navigating = Boolean(fromHistory);
  if (m.points.selected.indices.length === 1 && m.points.selected.indices[0] === row) {
    cfg._navigating = false;
    showEntity(cfg, m, row, fromHistory);
  } else {
    m.points.selected.indices = [row];
  }
}

function onNeighbourClick(cfg, m) {
const picked = Array.from(m.neighbours.selected.indices);
if (picked.length !== 1) return;
const row = get(m.neighbours, "row")[picked[0]];
if (row !== undefined) moveTo(cfg, m, Number(row), false);
}

function onHistory(cfg, m, step) {
const h = cfg._history;
if (!h || h.at + step < 0 || h.at + step >= h.rows.length) return;
h.at += step;
moveTo(cfg, m, h.rows[h.at], true);
}

// One click clears everything: the selection, the search, the neighbours and their rings.
function onClear(cfg, m) {
m.search.value = "";
m.matches.options = [];
if (cfg._isolated) onIsolate(cfg, m);
m.points.selected.indices = [];
clearEntity(cfg, m);
showSelection(cfg, m, []);
}

// The selection as CSV (key, label, the map's x and y, every embedded column), downloaded.
// Cells are quoted when needed; a cell a spreadsheet would run as a formula (=, +, -, @) is
// prefixed with a quote.
function selectionCsv(cfg, m) {
const src = m.points, rows = Array.from(src.selected.indices).sort((a, b) => a - b);
const cell = (v) => {
  let t = v === null || v === undefined || (typeof v === "number" && !isFinite(v)) ? "" : String(v);
  if (typeof v !== "number" && /^[=+\-@\t\r]/.test(t)) t = "'" + t;
  return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
};
const cols = [["key", "key"], ["label", "label"], ["x", "x"], ["y", "y"]].concat(
  cfg.selection_fields.filter(([f]) => f !== "key" && f !== "label").map(([f]) => [own(cfg.titles, f) || f, f]));
const lines = [cols.map((c) => cell(c[0])).join(",")];
const values = cols.map((c) => get(src, c[1]));
for (const i of rows) lines.push(values.map((v) => cell(v[i])).join(","));
return lines.join("\r\n") + "\r\n";
}

function onExport(cfg, m) {
const blob = new Blob([selectionCsv(cfg, m)], {type: "text/csv"});
const a = document.createElement("a");
a.href = URL.createObjectURL(blob);
a.download = `${cfg.table}-selection.csv`;
document.body.appendChild(a);
a.click();
setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// k, metric or minimum count changed: list the shown entity's neighbours again.
function lineColours(cfg, rows) {
  const out = new Uint32Array(rows.length).fill(rgba("#555555"));
  if (cfg._isolated) for (let j = 0; j < rows.length; j++) if (!cfg._isolated.has(rows[j])) out[j] = TRANSPARENT;
  return out;
}

function onSettings(cfg, m) {
const rows = Array.from(m.points.selected.indices);
if (rows.length === 1) showEntity(cfg, m, rows[0], true);
saveState(cfg, m);
}

// A colour change (or isolation) restyles the drawn points only: their renderers re-read their
// colours (no new data, no new spatial index over every row, the cost of a source change at
// 200,000 rows); sizes are data in Bokeh, so a size change is a source change. Any Bokeh
// without these view methods gets the source change.
function restyle(cfg, m, colourOnly) {
  const views = colourOnly ? pointViews(m) : [];
  if (views.length && views.every((v) => typeof v.set_visuals === "function" && typeof v.request_paint === "function")) {
    for (const v of views) Promise.resolve(v.set_visuals()).then(() => v.request_paint());
  } else {
    m.points.change.emit();
  }
}
function pointViews(m) {
  if (typeof Bokeh === "undefined" || !Bokeh.index) return [];
  const seen = new Set(), out = [];
  const walk = (v) => {
    if (!v || seen.has(v)) return;
    seen.add(v);
    if (v.model === m.fig && v.renderer_views) {
      for (const r of v.renderer_views.values()) if (r.model && r.model.data_source === m.points) out.push(r);
      return;
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  const idx = Bokeh.index;
  for (const v of (idx.roots ? idx.roots : Object.values(idx))) walk(v);
  return out;
}

function onRestyle(cfg, m, colourOnly) {
restyle(cfg, m, colourOnly);
saveState(cfg, m);
}

function onMap(cfg, m, cb_obj) {
const src = m.points, chosen = own(cfg.maps, cb_obj.value);
if (!chosen) return;
const x = get(src, chosen[0]), y = get(src, chosen[1]);
patchData(src, {x: x, y: y});
const bounds = (v) => { let lo = Infinity, hi = -Infinity;
  for (const t of v) { if (isFinite(t)) { lo = Math.min(lo, t); hi = Math.max(hi, t); } }
  const pad = ((hi - lo) || 1) * 0.05; return [lo - pad, hi + pad]; };
const [x0, x1] = bounds(x), [y0, y1] = bounds(y);
m.fig.x_range.setv({start: x0, end: x1});
m.fig.y_range.setv({start: y0, end: y1});
if (m.path) { const order = cfg.cycle; patchData(m.path, {x: order.map((i) => x[i]), y: order.map((i) => y[i])}); }
// the density layer (large tables) and the clusters were made on the first map: shown there only
if (m.density) m.density.visible = cb_obj.value === Object.keys(cfg.maps)[0];
placeLabels(cfg, m);
// a map that leaves entities out says so on the map (its title), never silently
if (cfg._title === undefined) cfg._title = m.fig.title.text;
m.fig.title.text = cfg._title + (chosen[4] || "");
for (const a of m.fig.below) if ("axis_label" in a) a.axis_label = chosen[2];
for (const a of m.fig.left) if ("axis_label" in a) a.axis_label = chosen[3];
const rows = Array.from(src.selected.indices);
if (rows.length === 1) showEntity(cfg, m, rows[0], true);
saveState(cfg, m);
}

// The page state in the URL fragment (#explorer=item&map=...&key=...): a link reopens the view.
function saveState(cfg, m) {
  if (cfg._restoring) return;
  const rows = Array.from(m.points.selected.indices), keys = get(m.points, "key");
  const state = {explorer: cfg.table, map: m.map.value, color: m.colour.value, q: m.search.value,
                 k: m.k.value, metric: m.metric.value, min: String(m.mincount.value)};
  if (rows.length === 1) state.key = String(keys[rows[0]]);
  try { history.replaceState(null, "", "#" + new URLSearchParams(state).toString()); } catch (e) { /* file:// */ }
}

function restoreState() {
  const hash = String(location.hash || "").slice(1);
  if (!hash.startsWith("explorer=")) return;
  const p = new URLSearchParams(hash), table = p.get("explorer");
  const model = (role) => { for (const d of Bokeh.documents) { const x = d.get_model_by_name(`explorer-${role}-${table}`);
    if (x) return x; } return null; };
  const points = model("points");
  if (!points) return;
  const cfg = config(points);
  cfg._restoring = true;
  try {
    // "colour": the key's name in links written before the page used one spelling (US)
    for (const [role, key, old] of [["map", "map"], ["color", "color", "colour"], ["k", "k"], ["metric", "metric"]]) {
      const w = model(role), v = p.get(key) !== null ? p.get(key) : (old ? p.get(old) : null);
      if (w && v !== null && (w.options || []).some((o) => (Array.isArray(o) ? o[0] : o) === v)) w.value = v;
    }
    const mc = model("mincount"), min = Number(p.get("min"));
    if (mc && p.get("min") !== null && isFinite(min) && !mc.disabled) mc.value = min;
    const search = model("search");
    if (search && p.get("q")) search.value = p.get("q");
    const key = p.get("key");
    if (key !== null) {
      const keys = get(points, "key");
      for (let i = 0; i < keys.length; i++) if (String(keys[i]) === key) { points.selected.indices = [i]; break; }
    }
  } finally { cfg._restoring = false; }
  const el = document.getElementById(`explorer-${table}`);
  if (el) el.scrollIntoView();
}

// Once Bokeh has drawn the page, the fragment's state is applied.
function whenReady(fn, tries) {
  const ready = typeof Bokeh !== "undefined" && Bokeh.documents && Bokeh.documents.length > 0 &&
    Bokeh.documents.every((d) => d.is_idle);
  if (ready) fn(); else if ((tries || 0) < 600) setTimeout(() => whenReady(fn, (tries || 0) + 1), 100);
}
window.addEventListener("load", () => whenReady(() => { layoutAll(); restoreState(); }));

// Every explorer's labels laid out once the page is drawn (the plot's size is known then).
function layoutAll() {
  for (const d of Bokeh.documents) {
    const all = d.all_models ? Array.from(d.all_models) : Array.from(d._all_models.values());
    for (const points of all.filter((x) => String(x.name || "").startsWith("explorer-points-"))) {
      const table = points.name.slice("explorer-points-".length), named = (role) => d.get_model_by_name(`explorer-${role}-${table}`);
      const m = {points: points, fig: named("map-plot"), clusters: named("clusters"), highlight: named("highlight"),
                 map: named("map")};
      if (m.fig && m.highlight) placeLabels(config(points), m);
    }
  }
}

// The explorer's settings travel once, as JSON in its points source's tags.
const configs = new WeakMap();
function config(points) {
  if (!configs.has(points)) configs.set(points, JSON.parse(points.tags[0]));
  return configs.get(points);
}
return {config, matchRows, nearest, colours, sizes, labelTexts, showEntity, showSelection,
        onSearch, onTyping, onPick, onSelect, onRestyle, onMap, onNeighbourClick, onHistory, onClear, onSettings,
        selectionCsv, onExport, onIsolate, lineColours, filterRows, saveState, restoreState, onView, placeLabels, onMove};
})();
"""

# Callback bodies (args: the explorer's models by role; ``m`` gathers them).
ON_TYPING = "E.onTyping(cfg, m, cb_obj.value_input);"  # each key (debounced)
ON_SEARCH = "E.onSearch(cfg, m, cb_obj.value);"  # Enter, or the value set by a program
ON_PICK = "E.onPick(cfg, m, cb_obj);"
ON_SELECT = "E.onSelect(cfg, m);"
ON_RESTYLE = "E.onRestyle(cfg, m, false);"  # size: data
ON_RECOLOUR = "E.onRestyle(cfg, m, true);"  # colour: visuals only
ON_MAP = "E.onMap(cfg, m, cb_obj);"
ON_VIEW = "E.onView(cfg, m);"  # pan, zoom, centring
ON_MOVE_START = "E.onMove(cfg, m, true);"
ON_MOVE_END = "E.onMove(cfg, m, false);"
ON_NEIGHBOUR_CLICK = "E.onNeighbourClick(cfg, m);"
ON_BACK = "E.onHistory(cfg, m, -1);"
ON_FORWARD = "E.onHistory(cfg, m, 1);"
ON_CLEAR = "E.onClear(cfg, m);"
ON_SETTINGS = "E.onSettings(cfg, m);"
ON_EXPORT = "E.onExport(cfg, m);"
ON_ISOLATE = "E.onIsolate(cfg, m);"
ON_SEARCH_IN = "E.onSearch(cfg, m, m.search.value);"
LINE_TRANSFORM = "return E.lineColours(cfg, xs);"
COLOUR_TRANSFORM = "return E.colours(cfg, m.points, m.colour.value, xs, m.legend);"
SIZE_TRANSFORM = "return E.sizes(cfg, m.points, m.size.active.includes(0), xs);"
LABELS_RIGHT = 'return E.labelTexts(cfg, m.points, xs, "right");'
LABELS_LEFT = 'return E.labelTexts(cfg, m.points, xs, "left");'
