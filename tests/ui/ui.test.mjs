// ui.test.mjs: the web page (GET /ui) in headless Chromium. Starts the real pendulum
// ($PENDULUM_BIN, else build/release/pendulum) against the OpenAI mock with a ledger in a temp
// dir, makes a few requests, then drives Debian's chromium through playwright-core:
// moving a slider changes the calculator's numbers, the chart draws, and the dashboard lists the
// requests made here (count and target), how all-cloud priced each of them (route's cloud
// target, as charged, reference, not priced) and the calculator run on them. Also: the
// calculator endpoint gives what `pendulum cost --json` gives, and `pendulum report --json`
// counts the same requests.
//
//   cd tests/ui && npm ci && PENDULUM_BIN=../../build/release/pendulum node --test .

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startMock } from '../mock/openai-mock.mjs';
import { startPendulum, mockProviders } from '../integration/lib/pendulum.mjs';
import { request, postJSON, streamSSE, waitFor } from '../integration/lib/http.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.env.PENDULUM_BIN ||= path.join(ROOT, 'build/release/pendulum');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const T = { timeout: 30000 };

// home is a local provider (the same mock behind it); route cheap tries local-llama first and
// has gpt-4o as its cloud target. mystery has no price, so its cost is unknown.
const providers = (port) => [...mockProviders(port),
  { name: 'home', kind: 'openai', base_url: `http://127.0.0.1:${port}/v1`, local: true }];
const MODELS = [
  { name: 'gpt-4o', provider: 'mock' },
  { name: 'gpt-4o-mini', provider: 'mock' },
  { name: 'local-llama', provider: 'home' },
  { name: 'mystery', provider: 'mock', upstream_model: 'mystery-1' },
];
const ROUTES = 'routes:\n  - { name: cheap, policy: fallback, targets: [local-llama, gpt-4o] }';
const chat = (model, content, extra = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });

describe('GET /ui', () => {
  let mock, pd, browser, page;
  const offsite = [];
  const pageErrors = [];

  before(async () => {
    mock = await startMock({ port: 0 });
    pd = await startPendulum({ providers: providers(mock.port), models: MODELS, workers: 2, extra: ROUTES });
    // The traffic the dashboard must show: 3 × gpt-4o (one streamed), 2 × gpt-4o-mini (cloud:
    // all-cloud as charged); 2 × route cheap, served by local-llama (at the route's cloud target
    // gpt-4o); 1 × local-llama by name (a route without a cloud target: at the reference
    // model); 1 × mystery (no price: not priced).
    const sent = [
      postJSON(`${pd.url}/v1/chat/completions`, chat('gpt-4o', 'one')),
      postJSON(`${pd.url}/v1/chat/completions`, chat('gpt-4o', 'two')),
      streamSSE(`${pd.url}/v1/chat/completions`, chat('gpt-4o', 'three', { stream: true })),
      postJSON(`${pd.url}/v1/chat/completions`, chat('gpt-4o-mini', 'four')),
      postJSON(`${pd.url}/v1/chat/completions`, chat('gpt-4o-mini', 'five')),
      postJSON(`${pd.url}/v1/chat/completions`, chat('cheap', 'six')),
      postJSON(`${pd.url}/v1/chat/completions`, chat('cheap', 'seven')),
      postJSON(`${pd.url}/v1/chat/completions`, chat('local-llama', 'eight')),
      postJSON(`${pd.url}/v1/chat/completions`, chat('mystery', 'nine')),
    ];
    for (const r of await Promise.all(sent)) assert.equal(r.status, 200);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // launch() gives every run a fresh temporary profile (its own --user-data-dir).
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    page.on('request', (r) => { if (!r.url().startsWith(pd.url)) offsite.push(r.url()); });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  }, { timeout: 30000 });

  after(async () => {
    if (browser) await browser.close();
    if (pd && !pd.stopped) await pd.stop();
    if (mock) await mock.close();
  });

  test('the page and its files come from the binary, with a strict CSP', T, async () => {
    for (const [p, type] of [['/ui', /^text\/html/], ['/ui/app.js', /^text\/javascript/], ['/ui/style.css', /^text\/css/]]) {
      const r = await request(`${pd.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.match(String(r.headers['content-type']), type);
      assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
      assert.equal(r.text, fs.readFileSync(path.join(ROOT, 'ui', p === '/ui' ? 'index.html' : path.basename(p)), 'utf8'),
        `${p} is the committed ui/ file (ui_assets.c up to date)`);
    }
    assert.equal((await request(`${pd.url}/ui/nope.js`)).status, 404);
  });

  test('the calculator endpoint is `pendulum cost`', T, async () => {
    const q = 'requests=2500000&input_tokens=700&output_tokens=300&api=gpt-4o,gpt-4o-mini';
    const r = await request(`${pd.url}/ui/api/calc?${q}`);
    assert.equal(r.status, 200);
    const api = JSON.parse(r.text);
    const cli = JSON.parse(execFileSync(process.env.PENDULUM_BIN, ['cost', '--json', '--requests', '2500000',
      '--input-tokens', '700', '--output-tokens', '300', '--api', 'gpt-4o,gpt-4o-mini'], { encoding: 'utf8' }));
    assert.deepEqual(api.options, cli.options);
    assert.deepEqual(api.crossover, cli.crossover);
    assert.deepEqual(api.recommendation, cli.recommendation);
    assert.equal(api.curve.requests.length, api.curve.series[0].usd.length);
    // the API line is per-request price × volume
    const k = 10;
    assert.ok(Math.abs(api.curve.series[0].usd[k] - api.options[0].per_request_usd * api.curve.requests[k]) < 1e-6);
    const bad = await request(`${pd.url}/ui/api/calc?requests=-5`);
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.text).error.param, 'requests');
  });

  test('sliders change the numbers and the chart draws', T, async () => {
    await page.goto(`${pd.url}/ui`);
    const gpt4o = page.locator('#calc-table tr[data-option="gpt-4o"] td').nth(1);
    // The worked example: 10^6 requests × (500 × $2.50 + 200 × $10) / 10^6 = $3,250.
    await waitFor(async () => (await gpt4o.textContent()) === '$3,250', { timeoutMs: 5000, what: 'first calculation' });
    assert.equal(await page.locator('#requests-out').textContent(), '1,000,000');
    const chart = page.locator('#chart');
    const drawn = Number(await chart.getAttribute('data-drawn'));
    assert.ok(drawn >= 1);
    const inked = () => page.evaluate(() => {
      const c = document.getElementById('chart');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
      return n;
    });
    assert.ok(await inked() > 2000, 'lines, axes and labels drawn on the canvas');

    // Move the volume slider like a user: 20 key presses of 0.05 decades = 10^7 requests.
    await page.locator('#requests').focus();
    for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowRight');
    await waitFor(async () => (await gpt4o.textContent()) === '$32,500', { timeoutMs: 5000, what: 'recalculation' });
    assert.equal(await page.locator('#requests-out').textContent(), '10,000,000');
    assert.ok(Number(await chart.getAttribute('data-drawn')) > drawn, 'the chart was redrawn');
    assert.ok(await inked() > 2000);
    // The crossover marked on the chart is the calculator's for these sliders.
    const cur = JSON.parse((await request(`${pd.url}/ui/api/calc?requests=10000000&input_tokens=500&output_tokens=200&api=gpt-4o,gpt-4o-mini`)).text);
    const cross = cur.crossover[0].first_year_requests ?? cur.crossover[0].steady_state_requests;
    assert.equal(await chart.getAttribute('data-crossover'), String(cross));

    // Cheaper hardware moves the self-hosted figure.
    const local = page.locator('#calc-table tr[data-option="self-hosted"] td').nth(1);
    const before = await local.textContent();
    await page.locator('#hardware_usd_per_hour').focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press('PageDown');
    await waitFor(async () => (await local.textContent()) !== before, { timeoutMs: 5000, what: 'self-hosted cost change' });
  });

  test('the dashboard shows the requests made in this test', T, async () => {
    await page.goto(`${pd.url}/ui`);
    const row = (t) => page.locator(`#dash-targets tr[data-target="${t}"]`);
    await waitFor(async () => (await row('gpt-4o').getAttribute('data-requests').catch(() => null)) === '3' &&
      (await row('gpt-4o-mini').getAttribute('data-requests').catch(() => null)) === '2',
    { timeoutMs: 8000, what: 'dashboard rows' });
    assert.equal(await page.locator('#dash-requests').textContent(), '9');
    assert.equal(await page.locator('#dash-targets tbody tr').count(), 4);
    assert.equal(await row('local-llama').getAttribute('data-requests'), '3');
    assert.match(await row('gpt-4o').locator('td').nth(4).textContent(), /^\d+(\.\d+)? ms$/, 'TTFT p50');
    assert.match(await row('gpt-4o').locator('td').nth(5).textContent(), /^\d+(\.\d+)? ms$/, 'TTFT p99');
    assert.match(await page.locator('#route-mix li[data-route="gpt-4o"]').textContent(), /3 · 33%/);
    // How all-cloud priced the nine requests, as counted above: 2 + 5 + 1 + 1.
    const basis = (k) => page.locator(`#dash-basis li[data-basis="${k}"]`);
    assert.equal(await basis('route_target').getAttribute('data-count'), '2');
    assert.equal(await basis('charged').getAttribute('data-count'), '5');
    assert.equal(await basis('reference').getAttribute('data-count'), '1');
    assert.equal(await basis('unpriced').getAttribute('data-count'), '1');
    assert.equal(await page.locator('#basis-route-target').textContent(), '2');
    assert.equal(await page.locator('#basis-charged').textContent(), '5');
    assert.equal(await page.locator('#basis-reference').textContent(), '1');
    assert.equal(await page.locator('#basis-unpriced').textContent(), '1');
    assert.equal(await page.locator('#basis-reference-detail').textContent(), '(gpt-4o: 1 route without a cloud target)');
    // The calculator on this traffic compares the models it used: gpt-4o served 3 and priced
    // 2 local requests (and the reference for 1), gpt-4o-mini served 2; mystery has no price.
    const calc = page.locator('#dash-calc');
    assert.equal(await calc.getAttribute('data-apis'), 'gpt-4o,gpt-4o-mini');
    assert.match(await calc.textContent(), /^9 requests in 1\.00 h × 729\.8 = /);
    assert.match(await calc.textContent(), /recommendation: (api|self-host|hybrid)$/);
    assert.match(await page.locator('#dash-spend').textContent(), /^\$0\.\d{4}$/);

    // One more request shows up on the next poll (the page refreshes every 2 s).
    assert.equal((await postJSON(`${pd.url}/v1/chat/completions`, chat('gpt-4o-mini', 'six'))).status, 200);
    await waitFor(async () => (await row('gpt-4o-mini').getAttribute('data-requests')) === '3',
      { timeoutMs: 8000, what: 'live update' });
    assert.equal(await page.locator('#dash-requests').textContent(), '10');
    await waitFor(async () => (await page.locator('#dash-basis li[data-basis="charged"]').getAttribute('data-count')) === '6',
      { timeoutMs: 8000, what: 'basis update' });
  });

  test('`pendulum report --json` counts the same requests', T, async () => {
    const db = path.join(pd.dir, 'ledger.db');
    const out = JSON.parse(execFileSync(process.env.PENDULUM_BIN,
      ['report', '--json', '--ledger', `sqlite://${db}`, '--since', '1h'], { encoding: 'utf8' }));
    const by = Object.fromEntries(out.targets.map((t) => [t.name, t]));
    assert.equal(by['gpt-4o'].requests, 3);
    assert.equal(by['gpt-4o-mini'].requests, 3);
    // all-cloud prices the gpt-4o-mini requests at gpt-4o: more than what they cost
    assert.ok(by['gpt-4o-mini'].all_cloud_usd > by['gpt-4o-mini'].spend_usd);
    assert.ok(Math.abs(by['gpt-4o'].savings_usd) < 1e-12);
    assert.ok(out.totals.savings_usd > 0);
    // Without --config nothing is known to run locally or to be routed: every request with
    // token counts is priced at the reference gpt-4o, and the calculator compares the models
    // that served traffic and have a price (local-llama and mystery have none).
    const o = out.calculator.observed;
    assert.equal(o.requests, 10);
    assert.equal(o.from, 'since');
    assert.deepEqual(o.apis.map((a) => [a.model, a.served]), [['gpt-4o', 3], ['gpt-4o-mini', 3]]);
    assert.deepEqual(out.calculator.options.map((x) => x.name), ['gpt-4o', 'gpt-4o-mini', 'self-hosted']);
    assert.ok(Math.abs(out.calculator.monthly_requests - 10 * o.scale) < 1e-6);
    assert.ok(Math.abs(o.scale - 730 / o.hours) < 1e-9);
  });

  test('no request left the gateway and the page logged no error', () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(pageErrors, []);
  });
});
