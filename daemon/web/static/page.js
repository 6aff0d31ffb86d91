// telemetryd status page: redraws the charts and tables from /api/history and /api/status.
// No library and nothing from the network; the server-drawn page stays as it is without JS.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 180, L = 64, R = 10, T = 10, B = 22;
  const range = document.body.dataset.range || "1h";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  function bytes(v) {
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? Math.round(v) + " B" : v.toFixed(1) + " " + units[i];
  }
  function clock(t) { return new Date(t * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false}); }
  // The same compact durations as the server and `telemetryd top` (42s, 3m05s, 1h02m, 2d03h).
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const pad = n => String(n).padStart(2, "0");
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + pad(Math.floor(s % 3600 / 60)) + "m";
    return Math.floor(s / 86400) + "d" + pad(Math.floor(s % 86400 / 3600)) + "h";
  }
  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function tip(node, text) { el("title", {}, node).textContent = text; }
  // One chart: lines [{name, points: [[x, y]]}], levels [{name, value, cls}], marks [{x, label}].
  function chart(lines, x0, x1, levels, marks, fmt, title) {
    const svg = el("svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title});
    tip(svg, title);
    const ys = [];
    lines.forEach(s => s.points.forEach(p => ys.push(p[1])));
    levels.forEach(l => ys.push(l.value));
    const top = (Math.max(0, ...ys) * 1.08) || 1, pw = W - L - R, ph = H - T - B;
    if (x1 <= x0) x1 = x0 + 1;
    const sx = x => (L + (x - x0) / (x1 - x0) * pw).toFixed(1);
    const sy = y => (T + ph - (y / top) * ph).toFixed(1);
    for (let i = 0; i < 5; i++) {
      const v = top * i / 4, y = sy(v);
      el("line", {class: "grid", x1: L, x2: W - R, y1: y, y2: y}, svg);
      const t = el("text", {class: "axis", x: L - 4, y: y, "text-anchor": "end", "dominant-baseline": "middle"}, svg);
      t.textContent = fmt(v);
    }
    [[0, "start"], [0.5, "middle"], [1, "end"]].forEach(([f, a]) => {
      const t = el("text", {class: "axis", x: sx(x0 + (x1 - x0) * f), y: H - 6, "text-anchor": a}, svg);
      t.textContent = clock(x0 + (x1 - x0) * f);
    });
    levels.forEach(l => tip(el("line", {class: l.cls, x1: L, x2: W - R, y1: sy(l.value), y2: sy(l.value)}, svg), l.name));
    marks.filter(m => m.x >= x0 && m.x <= x1).forEach(m =>
      tip(el("line", {class: "marker", x1: sx(m.x), x2: sx(m.x), y1: T, y2: T + ph}, svg), m.label));
    lines.forEach((s, i) => {
      const line = el("polyline", {class: "line s" + (i % 5), "data-series": s.name,
        points: s.points.map(p => sx(p[0]) + "," + sy(p[1])).join(" ")}, svg);
      tip(line, s.name);
    });
    return svg;
  }
  function treeFigure(box, tree, doc) {
    const id = `tree-${tree.watch}-${tree.pid}-${Math.floor(tree.started_at)}`;
    let fig = document.getElementById(id);
    if (!fig) {
      fig = document.createElement("figure");
      fig.className = "chart-box"; fig.id = id;
      fig.appendChild(document.createElement("div"));
      const cap = document.createElement("figcaption");
      fig.appendChild(cap);
      box.appendChild(fig);
    }
    const levels = [];
    if (tree.rss_warning_bytes) levels.push({name: "warning " + bytes(tree.rss_warning_bytes), value: tree.rss_warning_bytes, cls: "level-warning"});
    if (tree.rss_critical_bytes) levels.push({name: "critical " + bytes(tree.rss_critical_bytes), value: tree.rss_critical_bytes, cls: "level-critical"});
    const marks = tree.reports.map(r => ({x: r.at, label: `${r.kind} report (${r.state})`}));
    const name = `${tree.watch} pid ${tree.pid}`;
    const svg = chart([{name: name, points: tree.points.map(p => [p[0], p[1]])}], doc.since, doc.until,
                      levels, marks, bytes, "RSS of " + name);
    fig.replaceChild(svg, fig.firstElementChild);
    fig.lastElementChild.textContent = name + (tree.live ? "" : " (ended)");
    fig.dataset.drawn = "js";
    fig.dataset.points = String(tree.points.length);
  }
  async function drawHistory() {
    const doc = await (await fetch("/api/history?range=" + encodeURIComponent(range), {cache: "no-store"})).json();
    const box = document.getElementById("tree-charts");
    doc.trees.forEach(tree => treeFigure(box, tree, doc));
    const cost = document.getElementById("cost-chart");
    if (cost && doc.agents.length) {
      const lines = doc.agents.map(a => ({name: a.agent, points: a.points}));
      cost.replaceChild(chart(lines, doc.since, doc.until, [], [], v => "$" + v.toFixed(2), "Cost per hour by agent"),
                        cost.firstElementChild);
      cost.dataset.drawn = "js";
    }
    document.getElementById("charts").dataset.drawn = "js";
  }
  async function drawStatus() {
    const doc = await (await fetch("/api/status", {cache: "no-store"})).json();
    const line = document.getElementById("daemon");
    const d = doc.daemon;
    line.className = d.running ? "" : "down";
    line.textContent = d.running
      ? `running, pid ${d.pid}, version ${d.version}, last tick ${Math.max(0, doc.generated_at - d.last_tick_at).toFixed(1)} s ago; ${d.reports_pending} report(s) pending; delivery: ${d.delivery}`
      : "telemetryd is not running (last known state below)";
    const body = document.querySelector("#watches tbody");
    if (body) {
      body.replaceChildren(...doc.trees.map(t => {
        const tr = document.createElement("tr");
        const cells = [t.watch, t.pid, t.name, bytes(t.rss_bytes),
          t.rate_bytes_per_min == null ? "-" : bytes(t.rate_bytes_per_min),
          t.eta_seconds == null ? "-" : duration(t.eta_seconds),
          t.cpu_percent.toFixed(0) + " %", t.state];
        cells.forEach((c, i) => {
          const td = document.createElement("td");
          td.textContent = String(c);
          if (i === 7) td.className = "state-" + t.state;
          else if (i === 1 || (i >= 3 && i <= 6)) td.className = "num";
          tr.appendChild(td);
        });
        return tr;
      }));
    }
  }
  async function refresh() {
    try { await Promise.all([drawHistory(), drawStatus()]); document.body.dataset.error = ""; }
    catch (e) { document.body.dataset.error = String(e); }
  }
  refresh();
  setInterval(refresh, 5000);
})();
