#include "src/server/lag_page.h"

namespace pgfanout {

const char* LagPageHtml() {
  return R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pgfanout</title>
<link rel="stylesheet" href="/lag.css">
</head>
<body>
<h1>pgfanout <span id="state" class="badge">loading</span></h1>
<div class="sub" id="source"></div>
<h2>Sinks</h2>
<div class="sub" id="counts"></div>
<table id="sinks"><thead><tr><th>sink</th><th>type</th><th>tenants</th><th>state</th>
<th>cursor</th><th>behind (events)</th><th>behind (s)</th><th>delivered</th><th>last error</th></tr></thead>
<tbody></tbody></table>
<h2>Lag over the last hour (seconds behind)</h2>
<div class="legend" id="legend"></div>
<svg id="chart" width="960" height="300" role="img" aria-label="lag chart"></svg>
<script src="/lag.js"></script>
</body>
</html>
)html";
}

const char* LagPageScript() {
  return R"js(
"use strict";
// The bearer token, when the server asks for one, comes in the page's fragment
// (http://host:8686/#token=…): a fragment never leaves the browser, and the requests below
// send it in the Authorization header, never in a URL.
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const get = (p) => fetch(p, token ? {headers: {Authorization: "Bearer " + token}} : {})
  .then((r) => { if (!r.ok) throw new Error(p + ": HTTP " + r.status); return r.json(); });
const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
function cell(text, cls) { return "<td" + (cls ? " class=\"" + cls + "\"" : "") + ">" + esc(text) + "</td>"; }
function mib(b) { return (b / 1048576).toFixed(1) + " MiB"; }

function renderStatus(s) {
  const st = document.getElementById("state");
  st.textContent = s.state + (s.reason ? ": " + s.reason : "");
  st.className = "badge " + (s.ready ? "ok" : s.state === "halted" ? "bad" : "warn");
  const slot = s.slot || {};
  document.getElementById("source").textContent =
    "slot " + s.source.slot + " · confirmed " + s.source.confirmed_lsn +
    " · log durable " + s.log.durable_lsn +
    (slot.exists ? " · retained WAL " + mib(slot.retained_wal_bytes) + " (wal_status " + slot.wal_status + ")" : "") +
    " · log " + mib(s.log.size_bytes) + " · reconnects " + s.source.reconnects;
  const rows = s.sinks.map((k) => "<tr>" + cell(k.id) + cell(k.type) + cell(k.tenants.join(", ")) +
    cell(k.state, k.state === "running" ? "" : "err") + cell(k.cursor || "-") +
    cell((k.events_behind_is_lower_bound ? "≥ " : "") + (k.events_behind ?? "-"), "num") +
    cell(k.seconds_behind === undefined ? "-" : k.seconds_behind.toFixed(1), "num") +
    cell(k.events_delivered, "num") + cell(k.last_error || "", "err") + "</tr>");
  document.querySelector("#sinks tbody").innerHTML = rows.join("");
  // At scale the table shows the first page; the counts and the furthest behind cover all.
  const c = s.sink_states || {};
  const far = (s.furthest_behind || []).map((f) => f.id + " " + f.seconds_behind.toFixed(1) + " s");
  document.getElementById("counts").textContent =
    (c.running + (c.waiting || 0) + c.retrying + c.stopped + (c.paused || 0)) + " sinks: " +
    c.running + " running, " + (c.waiting || 0) + " waiting, " + c.retrying + " retrying, " +
    c.stopped + " stopped" + (c.paused ? ", " + c.paused + " paused" : "") +
    (s.sinks_matching > s.sinks.length ? " · table: the first " + s.sinks.length : "") +
    (far.length ? " · furthest behind: " + far.join(", ") : "");
}

function renderChart(h) {
  const svg = document.getElementById("chart");
  const W = svg.width.baseVal.value, H = svg.height.baseVal.value, L = 50, R = 10, T = 10, B = 26;
  const now = Date.now(), from = now - 3600 * 1000;
  const ids = Object.keys(h.sinks);
  let max = 1;
  for (const id of ids) for (const p of h.sinks[id]) max = Math.max(max, p[1]);
  max = Math.ceil(max * 1.1);
  const x = (t) => L + (W - L - R) * (t - from) / (now - from);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  let out = "";
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = y(v);
    out += `<line x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}" stroke="#eef1f5"/>` +
           `<text x="${L - 6}" y="${yy + 4}" font-size="11" text-anchor="end" fill="#5b6675">${v.toFixed(v < 10 ? 1 : 0)}</text>`;
  }
  for (let m = 0; m <= 60; m += 10) {
    const xx = x(from + m * 60000);
    out += `<text x="${xx}" y="${H - 8}" font-size="11" text-anchor="middle" fill="#5b6675">${m === 60 ? "now" : "-" + (60 - m) + " min"}</text>`;
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  ids.forEach((id, i) => {
    const c = colors[i % colors.length];
    const pts = h.sinks[id].filter((p) => p[0] >= from).map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1));
    if (pts.length) out += `<polyline class="lag" data-sink="${esc(id)}" fill="none" stroke="${c}" stroke-width="2" points="${pts.join(" ")}"/>`;
    // Built with the DOM: the page's policy allows no inline style attribute.
    const item = document.createElement("span"), mark = document.createElement("i");
    mark.style.background = c;
    item.append(mark, id);
    legend.append(item);
  });
  svg.innerHTML = out;
}

async function refresh() {
  try {
    const [s, h] = await Promise.all([get("/status?per_page=100"), get("/lag.json")]);
    renderStatus(s);
    renderChart(h);
    document.body.dataset.rendered = "yes";
  } catch (e) {
    const st = document.getElementById("state");
    st.textContent = "cannot reach pgfanout: " + e;
    st.className = "badge bad";
  }
}
refresh();
setInterval(refresh, 5000);
)js";
}

const char* LagPageStyle() {
  return R"css(
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d232b; background: #fafbfc; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6675; margin-bottom: 16px; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; }
  .ok { background: #d9f2e3; color: #136c3a; } .warn { background: #fff1c7; color: #7a5600; }
  .bad { background: #fbdcdc; color: #9b1c1c; }
  table { border-collapse: collapse; background: #fff; margin: 8px 0 20px; }
  th, td { border: 1px solid #dde2e8; padding: 4px 10px; text-align: left; vertical-align: top; }
  th { background: #eef1f5; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .err { color: #9b1c1c; max-width: 520px; word-break: break-word; }
  svg { background: #fff; border: 1px solid #dde2e8; }
  .legend span { display: inline-block; margin-right: 14px; }
  .legend i { display: inline-block; width: 12px; height: 3px; margin-right: 4px; vertical-align: middle; }
)css";
}

}  // namespace pgfanout
