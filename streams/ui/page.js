// The live page: polls /ui/data every 2 s and redraws; looks customers up on /customers/<id>.
// With CLV_API_TOKEN set on the worker, both need the token: asked once, kept for this tab only.
"use strict";

const REFRESH_MS = 2000;
const PALETTE = ["#2f6fde", "#e0822b", "#2a9d6a", "#c0392b", "#8e44ad", "#16a0b5", "#b58b00", "#6b7385",
                 "#d35492", "#4f5d2f", "#1f3a93", "#a0522d"];
const SHORT = {"High Value / High Loyalty": "HV/HL", "High Value / Low Loyalty": "HV/LL",
               "Low Value / High Loyalty": "LV/HL", "Low Value / Low Loyalty": "LV/LL"};
const short = (s) => SHORT[s] || s;
const colours = {};
const colourOf = (segment) => colours[segment] || (colours[segment] = PALETTE[Object.keys(colours).length % PALETTE.length]);
const clock = (ms) => new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
const money = (v) => v === null || v === undefined ? "-" : Number(v).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
const pct = (v) => v === null || v === undefined ? "-" : (100 * v).toFixed(1) + " %";

function token() { return sessionStorage.getItem("clvstream-token") || ""; }

async function getJson(path) {
  const headers = token() ? {"Authorization": "Bearer " + token()} : {};
  const response = await fetch(path, {headers});
  if (response.status === 401) {
    document.getElementById("token-form").hidden = false;
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = {error: "no JSON answer (HTTP " + response.status + ")"}; }
  return {status: response.status, body};
}

function lineChart(id, yTitle, xLinear, extra) {
  return new Chart(document.getElementById(id), Object.assign({
    type: "line",
    data: {datasets: []},
    options: {
      animation: false, maintainAspectRatio: false, parsing: false, normalized: true,
      elements: {point: {radius: 0}},
      scales: {
        x: xLinear || {type: "linear", ticks: {callback: (v) => clock(v), maxTicksLimit: 8}},
        y: {beginAtZero: true, title: {display: true, text: yTitle}},
      },
      plugins: {legend: {position: "bottom"}},
    },
  }, extra || {}));
}

function barChart(id, title, yOptions) {
  return new Chart(document.getElementById(id), {
    type: "bar",
    data: {labels: [], datasets: []},
    options: {animation: false, maintainAspectRatio: false,
              plugins: {legend: {display: false}, title: {display: true, text: title}},
              scales: {y: yOptions || {beginAtZero: true}}},
  });
}

const charts = {
  segmentsOverTime: lineChart("segments-over-time", "customers"),
  lag: lineChart("lag", "records"),
  pareto: lineChart("pareto", "share of revenue", {type: "linear", min: 0, max: 1,
      title: {display: true, text: "share of customers (largest first)"},
      ticks: {callback: (v) => Math.round(v * 100) + " %"}}),
  clv: new Chart(document.getElementById("clv-per-segment"), {
    type: "bar", data: {labels: [], datasets: []},
    options: {animation: false, maintainAspectRatio: false, plugins: {legend: {position: "bottom"}},
              scales: {y: {title: {display: true, text: "EUR per customer"}}}},
  }),
  churn: barChart("churn", "churn rate", {beginAtZero: true, max: 1, ticks: {callback: (v) => Math.round(v * 100) + " %"}}),
  nps: barChart("nps", "NPS", {min: -100, max: 100}),
  ces: barChart("ces", "average CES (1-7)", {min: 0, max: 7}),
};
charts.pareto.options.scales.y.max = 1;
charts.pareto.options.scales.y.ticks = {callback: (v) => Math.round(v * 100) + " %"};

function drawHistory(history) {
  const names = new Set();
  history.forEach((s) => Object.keys(s.segments).forEach((n) => names.add(n)));
  charts.segmentsOverTime.data.datasets = [...names].sort().map((name) => ({
    label: short(name), borderColor: colourOf(name), backgroundColor: colourOf(name), borderWidth: 2,
    data: history.filter((s) => s.segments[name]).map((s) => ({x: s.t, y: s.segments[name].customers})),
  }));
  charts.segmentsOverTime.update("none");
  charts.lag.data.datasets = [{label: "consumer lag", borderColor: "#c0392b", backgroundColor: "#c0392b",
    borderWidth: 2, data: history.filter((s) => s.lag !== null).map((s) => ({x: s.t, y: s.lag}))}];
  charts.lag.update("none");
}

function drawSegments(segments) {
  const names = Object.keys(segments).sort();
  const labels = names.map(short);
  const forms = [["formula", "#2f6fde"], ["predicted", "#e0822b"], ["potential", "#2a9d6a"]];
  charts.clv.data = {labels, datasets: forms.map(([form, colour]) => ({
    label: form, backgroundColor: colour, data: names.map((n) => segments[n].clv_average[form])}))};
  charts.clv.update("none");
  for (const [chart, key] of [[charts.churn, "churn_rate"], [charts.nps, "nps"], [charts.ces, "average_ces"]]) {
    chart.data = {labels, datasets: [{label: key, backgroundColor: names.map(colourOf),
                                      data: names.map((n) => segments[n][key])}]};
    chart.update("none");
  }
}

function drawPareto(pareto) {
  const note = document.getElementById("pareto-note");
  if (!pareto) {
    charts.pareto.data.datasets = [];
    note.textContent = "no revenue yet";
  } else {
    charts.pareto.data.datasets = [
      {label: "revenue share", borderColor: "#2f6fde", backgroundColor: "#2f6fde", borderWidth: 2,
       data: pareto.curve.map((p) => ({x: p.customers, y: p.share}))},
      {label: "80/20 reference", borderColor: "#aab2c3", borderDash: [4, 4], borderWidth: 1,
       data: [{x: 0, y: 0.8}, {x: 0.2, y: 0.8}, {x: 0.2, y: 0}]},
      {label: "top 20 %", type: "scatter", borderColor: "#c0392b", backgroundColor: "#c0392b", pointRadius: 6,
       data: [{x: 0.2, y: pareto.top20_share}]},
    ];
    note.textContent = `The top 20 % of ${pareto.customers.toLocaleString()} customers bring ${pct(pareto.top20_share)} ` +
      `of the revenue; 80 % of the revenue comes from the top ${pct(pareto.customers_for_80)} of customers.`;
  }
  charts.pareto.update("none");
}

function drawFlow(flow) {
  const table = document.getElementById("flow");
  const body = document.createElement("tbody");
  if (!flow.length) {
    body.insertRow().insertCell().textContent = "no moves yet";
  } else {
    const sources = [...new Set(flow.map((r) => r.from))].sort((a, b) => (a === "none") - (b === "none") || a.localeCompare(b));
    const targets = [...new Set(flow.map((r) => r.to))].sort();
    const count = {};
    let max = 0;
    flow.forEach((r) => { count[r.from + "\u0000" + r.to] = r.customers; if (r.from !== "none") max = Math.max(max, r.customers); });
    const head = body.insertRow();
    head.appendChild(document.createElement("th")).textContent = "from \\ to";
    targets.forEach((t) => { head.appendChild(document.createElement("th")).textContent = short(t); });
    sources.forEach((s) => {
      const row = body.insertRow();
      const th = row.appendChild(document.createElement("th"));
      th.className = "row";
      th.textContent = s === "none" ? "first assessment" : short(s);
      targets.forEach((t) => {
        const n = count[s + "\u0000" + t] || 0;
        const cell = row.insertCell();
        cell.textContent = n ? n.toLocaleString() : "";
        if (n && s !== "none" && max) cell.style.background = `rgba(47, 111, 222, ${0.1 + 0.6 * n / max})`;
      });
    });
  }
  table.replaceChildren(body);
}

function drawStatus(data) {
  const w = data.worker || {};
  const parts = [w.ready ? "worker ready" : "worker not ready",
                 data.customers === null ? "no population figures yet" : `${data.customers.toLocaleString()} customers`,
                 data.policy ? `policy ${data.policy.name}` : null,
                 data.lag === null ? null : `lag ${data.lag.toLocaleString()} records`,
                 `updated ${clock(Date.now())}`];
  document.getElementById("status").textContent = parts.filter(Boolean).join(" \u00b7 ");
}

async function refresh() {
  try {
    const {status, body} = await getJson("/ui/data");
    if (status === 200) {
      drawStatus(body);
      drawHistory(body.history);
      drawSegments(body.segments);
      drawPareto(body.pareto);
      drawFlow(body.flow);
      window.clvPage.updates += 1;
    } else {
      document.getElementById("status").textContent = body.error || ("HTTP " + status);
    }
  } catch (e) {
    document.getElementById("status").textContent = "worker unreachable: " + e;
  }
}

function row(table, label, value) {
  const tr = table.insertRow();
  tr.insertCell().textContent = label;
  tr.insertCell().textContent = value === null || value === undefined ? "-" : String(value);
}

async function lookup(event) {
  event.preventDefault();
  const id = document.getElementById("customer-id").value.trim();
  const out = document.getElementById("customer");
  if (!id) return;
  const {status, body} = await getJson("/customers/" + encodeURIComponent(id));
  if (status !== 200) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = body.error || ("HTTP " + status);
    out.replaceChildren(p);
    return;
  }
  const table = document.createElement("table");
  table.id = "customer-figures";
  const clv = body.clv || {};
  row(table, "customer", body.customer_id);
  row(table, "segment", body.segment);
  row(table, "since", body.segment_since);
  row(table, "reason for the last move", body.reason);
  row(table, "historical revenue", money(clv.historical_revenue));
  row(table, "historical margin", money(clv.historical_margin));
  row(table, "formula CLV", money(clv.formula));
  row(table, "predicted CLV", money(clv.predicted));
  row(table, "potential CLV", money(clv.potential));
  row(table, "P(alive)", clv.p_alive === null || clv.p_alive === undefined ? "- (no fitted model yet)" : clv.p_alive.toFixed(3));
  row(table, "scored by", clv.model);
  const outlook = body.outlook;
  if (outlook) {  // present on workers that compute the order outlook
    row(table, "expected next order", outlook.expected_next_order_date);
    row(table, "average days between orders", outlook.average_days_between_orders);
    row(table, "churn probability", outlook.churn_probability === null ? null : pct(outlook.churn_probability));
    row(table, "orders expected in 365 days", outlook.predicted_orders_365d);
  } else {
    row(table, "expected next order", "not computed by this worker");
  }
  if (body.service_level) {
    row(table, "service level", Object.entries(body.service_level).map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join("; "));
  }
  if (body.note) row(table, "note", body.note);
  out.replaceChildren(table);
}

document.getElementById("lookup-form").addEventListener("submit", lookup);
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("clvstream-token", document.getElementById("token").value);
  document.getElementById("token-form").hidden = true;
  refresh();
});
window.clvPage = {charts, updates: 0, refresh};
refresh();
setInterval(refresh, REFRESH_MS);
