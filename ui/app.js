// app.js: the Pendulum page. No framework, no CDN: everything is served by the gateway.
// The calculator's numbers come from GET /ui/api/calc (the C calculator, one implementation);
// this file only reads sliders, draws the chart and fills tables. The dashboard polls
// GET /ui/api/dashboard every few seconds.
'use strict';

const $ = (id) => document.getElementById(id);
const usd = (v, digits = 0) => (v == null ? '–' : '$' + Number(v).toLocaleString('en-US',
  { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const count = (v) => (v == null ? '–' : Math.round(v).toLocaleString('en-US'));
const ms = (v) => (v == null ? '–' : (v < 10 ? v.toFixed(2) : v.toFixed(1)) + ' ms');
const COLORS = ['#2563eb', '#9333ea', '#0891b2', '#ca8a04', '#db2777'];
const LOCAL_COLORS = { first_year: '#dc2626', steady_state: '#16a34a' };

// ---- calculator ------------------------------------------------------------------------------

const SLIDERS = [
  // [input id, output id, query parameter, value -> query value, value -> label]
  ['requests', 'requests-out', 'requests', (v) => Math.round(10 ** v), (v) => count(10 ** v)],
  ['input_tokens', 'input-out', 'input_tokens', (v) => v, (v) => count(v)],
  ['output_tokens', 'output-out', 'output_tokens', (v) => v, (v) => count(v)],
  ['hardware_usd_per_hour', 'hw-out', 'hardware_usd_per_hour', (v) => v, (v) => usd(v, 3)],
  ['requests_per_hour_per_instance', 'rph-out', 'requests_per_hour_per_instance', (v) => v, (v) => count(v)],
  ['ops_hours', 'ops-out', 'ops_hours', (v) => v, (v) => count(v)],
];

function calcQuery() {
  const q = new URLSearchParams();
  for (const [id, out, name, toQuery, toLabel] of SLIDERS) {
    const v = Number($(id).value);
    $(out).textContent = toLabel(v);
    q.set(name, String(toQuery(v)));
  }
  q.set('api', 'gpt-4o,gpt-4o-mini');
  return q;
}

let calcSeq = 0;
async function updateCalc() {
  const seq = ++calcSeq;
  const res = await fetch('/ui/api/calc?' + calcQuery());
  const doc = await res.json();
  if (seq !== calcSeq) return; // a newer slider position is on its way
  const err = $('calc-error');
  if (!res.ok) {
    err.hidden = false;
    err.textContent = doc.error ? doc.error.message : 'error ' + res.status;
    return;
  }
  err.hidden = true;
  renderCalc(doc);
  drawChart($('chart'), doc);
}

function renderCalc(doc) {
  const body = $('calc-table').tBodies[0];
  body.replaceChildren(...doc.options.map((o) => {
    const tr = document.createElement('tr');
    tr.dataset.option = o.name;
    const label = o.kind === 'api' ? o.name : `self-hosted (${o.instances} × instance)`;
    for (const t of [label, usd(o.monthly_usd_whole), usd(o.steady_state_usd_whole)]) {
      const td = document.createElement('td');
      td.textContent = t;
      tr.append(td);
    }
    return tr;
  }));
  $('crossover').textContent = doc.crossover.map((c) => `${c.api}: self-hosting pays from ` +
    (c.first_year_requests == null ? 'never (first year)' : `${count(c.first_year_requests)} requests/month (first year)`) +
    (c.steady_state_requests == null ? ', never in steady state' : `, ${count(c.steady_state_requests)} in steady state`)).join('; ');
  $('recommendation').textContent = `Recommendation: ${doc.recommendation.choice}` +
    (doc.recommendation.reasons.length ? ' — ' + doc.recommendation.reasons.map((r) => r.text).join(' ') : '');
}

// Log–log chart of monthly cost against monthly requests, with the first API's crossovers.
function drawChart(canvas, doc) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, L = 70, R = 170, T = 16, B = 40;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  const xs = doc.curve.requests;
  const ys = doc.curve.series.flatMap((s) => s.usd).filter((v) => v > 0);
  const x0 = Math.log10(xs[0]), x1 = Math.log10(xs[xs.length - 1]);
  const y0 = Math.floor(Math.log10(Math.min(...ys))), y1 = Math.ceil(Math.log10(Math.max(...ys)));
  const px = (v) => L + (Math.log10(v) - x0) / (x1 - x0) * (W - L - R);
  const py = (v) => H - B - (Math.log10(Math.max(v, 10 ** y0)) - y0) / (y1 - y0 || 1) * (H - T - B);

  ctx.strokeStyle = '#e5e7eb'; ctx.fillStyle = '#5b6470'; ctx.lineWidth = 1;
  ctx.font = '11px system-ui, sans-serif';
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e++) {
    ctx.beginPath(); ctx.moveTo(px(10 ** e), T); ctx.lineTo(px(10 ** e), H - B); ctx.stroke();
    ctx.fillText(count(10 ** e), px(10 ** e) - 14, H - B + 14);
  }
  for (let e = y0; e <= y1; e++) {
    ctx.beginPath(); ctx.moveTo(L, py(10 ** e)); ctx.lineTo(W - R, py(10 ** e)); ctx.stroke();
    ctx.fillText(usd(10 ** e), 4, py(10 ** e) + 4);
  }
  ctx.fillText('requests per month', (W - R) / 2, H - 8);

  doc.curve.series.forEach((s, i) => {
    ctx.strokeStyle = LOCAL_COLORS[s.kind] || COLORS[i % COLORS.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.usd.forEach((v, k) => (k ? ctx.lineTo(px(xs[k]), py(v)) : ctx.moveTo(px(xs[k]), py(v))));
    ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillRect(W - R + 10, T + 6 + i * 18, 12, 3);
    ctx.fillText(s.name, W - R + 28, T + 10 + i * 18);
  });

  // The crossover of the first API against first-year self-hosting, and the chosen volume.
  const c = doc.crossover[0];
  const cross = c && (c.first_year_requests ?? c.steady_state_requests);
  canvas.dataset.crossover = cross == null ? 'never' : String(cross);
  if (cross != null && cross >= xs[0] && cross <= xs[xs.length - 1]) {
    ctx.strokeStyle = '#111'; ctx.setLineDash([5, 4]); ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(px(cross), T); ctx.lineTo(px(cross), H - B); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = '#111';
    ctx.fillText(`crossover ${count(cross)}`, px(cross) + 4, T + 12);
  }
  const req = doc.assumptions.requests, api = doc.options[0];
  if (req > 0) {
    ctx.fillStyle = '#111';
    ctx.beginPath(); ctx.arc(px(req), py(api.monthly_usd), 4, 0, 2 * Math.PI); ctx.fill();
  }
  canvas.dataset.drawn = String(Number(canvas.dataset.drawn || 0) + 1);
}

// ---- dashboard -------------------------------------------------------------------------------

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.append(td);
}

function renderDashboard(d) {
  const t = d.totals;
  const by = d.all_cloud && d.all_cloud.by === 'route' ? "each route's cloud target" : d.cloud_model;
  $('dash-window').textContent = `(last ${d.minutes} min, all-cloud at ${by})`;
  $('dash-requests').textContent = count(t.requests);
  $('dash-spend').textContent = usd(t.spend_usd, 4);
  $('dash-cloud').textContent = usd(t.all_cloud_usd, 4);
  $('dash-savings').textContent = usd(t.savings_usd, 4);
  renderBasis(d);
  renderObservedCalc(d.calculator);
  $('route-mix').replaceChildren(...d.routes.map((r) => {
    const li = document.createElement('li');
    li.dataset.route = r.name;
    const share = t.requests ? r.requests / t.requests : 0;
    const name = document.createElement('span'); name.textContent = r.name + (r.local ? ' (local)' : '');
    const bar = document.createElement('span'); bar.className = 'bar'; bar.style.width = (share * 100).toFixed(1) + '%';
    const n = document.createElement('span'); n.textContent = `${count(r.requests)} · ${(share * 100).toFixed(0)}%`;
    li.append(name, bar, n);
    return li;
  }));
  $('dash-targets').tBodies[0].replaceChildren(...d.targets.map((g) => {
    const tr = document.createElement('tr');
    tr.dataset.target = g.name;
    tr.dataset.requests = String(g.requests);
    cell(tr, g.name + (g.local ? ' (local)' : ''));
    cell(tr, count(g.requests));
    cell(tr, count(g.errors));
    cell(tr, usd(g.spend_usd, 4));
    cell(tr, ms(g.ttft_ms.p50));
    cell(tr, ms(g.ttft_ms.p99));
    cell(tr, ms(g.total_ms.p50));
    cell(tr, ms(g.total_ms.p99));
    return tr;
  }));
  $('dash-notes').textContent = d.notes.join(' · ');
}

// Which way the all-cloud figure priced the requests (docs/dashboard.md, all_cloud_basis);
// the four counts add up to the requests.
function renderBasis(d) {
  const t = d.totals, b = t.all_cloud_basis;
  const fallback = [['no_cloud_target', 'route without a cloud target'],
    ['unknown_route', 'route not in the config'], ['unpriced_target', 'cloud target without a price']];
  const ref = b.reference + fallback.reduce((s, [k]) => s + b[k], 0);
  $('basis-route-target').textContent = count(b.route_target);
  $('basis-charged').textContent = count(b.charged);
  $('basis-reference').textContent = count(ref);
  const why = fallback.filter(([k]) => b[k] > 0).map(([k, text]) => `${count(b[k])} ${text}`);
  $('basis-reference-detail').textContent = `(${d.cloud_model}` + (why.length ? ': ' + why.join(', ') : '') + ')';
  $('basis-unpriced').textContent = count(t.requests - t.comparable);
  for (const [k, v] of [['route_target', b.route_target], ['charged', b.charged], ['reference', ref],
    ['unpriced', t.requests - t.comparable]]) {
    document.querySelector(`#dash-basis li[data-basis="${k}"]`).dataset.count = String(v);
  }
}

// `pendulum cost` run on the window's traffic: the scaling, the APIs it used, the answer.
function renderObservedCalc(c) {
  const p = $('dash-calc');
  const o = c && c.observed;
  if (!o || c.error) {
    p.textContent = c && c.error ? `not run: ${c.error}` : '–';
    p.dataset.apis = '';
    return;
  }
  const opts = c.options.map((x) => `${x.kind === 'api' ? x.name : 'self-hosted'} ${usd(x.monthly_usd_whole)}`);
  p.textContent = `${count(o.requests)} requests in ${o.hours.toFixed(2)} h × ${o.scale.toPrecision(4)} = ` +
    `${count(o.monthly_requests)} requests/month of ${count(o.input_mean)} input + ${count(o.output_mean)} output tokens: ` +
    opts.join(', ') + ` per month; recommendation: ${c.recommendation.choice}`;
  p.dataset.apis = o.apis.map((a) => a.model).join(',');
  p.dataset.monthlyRequests = String(Math.round(o.monthly_requests));
}

async function updateDashboard() {
  const err = $('dash-error');
  try {
    const res = await fetch('/ui/api/dashboard?minutes=60');
    const d = await res.json();
    if (!res.ok) throw new Error(d.error ? d.error.message : 'error ' + res.status);
    err.hidden = true;
    renderDashboard(d);
  } catch (e) {
    err.hidden = false;
    err.textContent = 'dashboard: ' + e.message;
  }
}

let timer = 0;
for (const [id] of SLIDERS) {
  $(id).addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(updateCalc, 60);
  });
}
updateCalc();
updateDashboard();
setInterval(updateDashboard, 2000);
