// The economics as the gateway records them: every request in the ledger exactly once (also under
// concurrent load and across SIGTERM), costs and timings in the record, /metrics valid for promtool.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock } from '../mock/openai-mock.mjs';
import { startPendulum, mockProviders, MOCK_MODELS, pendulumBin } from './lib/pendulum.mjs';
import { request, postJSON, streamSSE, waitFor } from './lib/http.mjs';
import { chat } from './lib/gateway.mjs';

const T = { timeout: 60000 };

function rows(db, sql) {
  const out = execFileSync('sqlite3', ['-json', db, sql], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

describe('ledger and metrics', () => {
  let mock, pd, db;
  before(async () => {
    mock = await startMock({ port: 0 });
    db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pendulum-ledger-')), 'ledger.db');
    pd = await startPendulum({ providers: mockProviders(mock.port), models: MOCK_MODELS, ledger: `sqlite://${db}` });
  }, { timeout: 20000 });
  after(async () => {
    if (pd && !pd.stopped) await pd.stop();
    await mock.close();
    fs.rmSync(path.dirname(db), { recursive: true, force: true });
  });

  test('concurrent load, then SIGTERM: every request recorded exactly once, with cost and timings', T, async () => {
    const N = 300;
    const ids = new Set();
    const jobs = [];
    for (let i = 0; i < N; i++) {
      const body = chat(`load ${i}`, i % 3 === 0 ? { stream: true } : {});
      jobs.push((i % 3 === 0 ? streamSSE(`${pd.url}/v1/chat/completions`, body)
                             : postJSON(`${pd.url}/v1/chat/completions`, body))
        .then((r) => { assert.equal(r.status, 200); ids.add(r.headers['x-request-id']); }));
      if (jobs.length >= 50) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
    assert.equal(ids.size, N);
    const metrics = await request(`${pd.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers['content-type']), /^text\/plain/);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics.text, encoding: 'utf8' });
    assert.equal(promtool.status, 0, `promtool: ${promtool.stdout}${promtool.stderr}`);
    assert.match(metrics.text, new RegExp(`pendulum_requests_total\\{route="gpt-4o",target="gpt-4o",status="200"\\} ${N}\\b`));

    await pd.stop(); // SIGTERM: the queue is flushed before exit
    assert.deepEqual(pd.exit, { code: 0, signal: null });
    const got = rows(db, 'SELECT id, status, stream, prompt_tokens, completion_tokens, cost_usd, total_ms, ttft_ms, overhead_ms FROM pendulum_requests');
    const chatRows = got.filter((r) => ids.has(r.id));
    assert.equal(chatRows.length, N, 'each chat request once');
    assert.equal(new Set(got.map((r) => r.id)).size, got.length, 'no id twice');
    for (const r of chatRows) {
      assert.equal(r.status, 200);
      assert.ok(r.prompt_tokens > 0 && r.completion_tokens > 0, 'usage recorded, streams included');
      assert.ok(Math.abs(r.cost_usd - (r.prompt_tokens * 2.5e-6 + r.completion_tokens * 10e-6)) < 1e-12);
      assert.ok(r.total_ms > 0 && r.ttft_ms > 0 && r.ttft_ms <= r.total_ms);
      assert.ok(r.overhead_ms >= 0 && r.overhead_ms <= r.total_ms);
    }
    assert.ok(chatRows.some((r) => r.stream === 1), 'streams recorded, with usage');
    for (const line of pd.stderrText.split('\n')) assert.ok(!line.includes('load 1'), 'no prompt in the log');

    // A restart on the same ledger: new ids (wall clock, a tag drawn at start), none skipped as
    // a duplicate of the first run's.
    const idForm = /^req-([0-9a-f]{13})-([0-9a-f]{8})-[0-9a-f]+$/;
    const tags1 = new Set([...ids].map((id) => { assert.match(id, idForm); return id.match(idForm)[2]; }));
    assert.ok(tags1.size >= 1 && tags1.size <= 8, 'a tag per worker');
    pd = await startPendulum({ providers: mockProviders(mock.port), models: MOCK_MODELS, ledger: `sqlite://${db}` });
    const ids2 = [];
    for (let i = 0; i < 20; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, chat(`again ${i}`));
      assert.equal(r.status, 200);
      ids2.push(r.headers['x-request-id']);
    }
    await pd.stop();
    for (const id of ids2) assert.ok(!tags1.has(id.match(idForm)[2]), 'new tags at each start');
    const all = new Set(rows(db, 'SELECT id FROM pendulum_requests').map((r) => r.id));
    for (const id of ids2) assert.ok(all.has(id), `${id} recorded after the restart`);
    assert.equal(rows(db, 'SELECT count(*) AS n FROM pendulum_requests')[0].n, got.length + 20);
  });
});

describe('price overrides from the config', () => {
  let mock, pd;
  before(async () => {
    mock = await startMock({ port: 0 });
    pd = await startPendulum({
      providers: [...mockProviders(mock.port),
        { name: 'home', kind: 'openai', base_url: `${mock.url}/v1`, local: true, cost: { usd_per_hour: 1.006, requests_per_hour: 800 } }],
      models: [...MOCK_MODELS, { name: 'local-llama', provider: 'home' }], ledger: 'off',
      extra: 'prices:\n  - { model: real-name, input: 1.0, output: 2.0 }\n  - { model: gpt-4o, output: 20 }',
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await mock.close(); });

  test('an unknown model gets a price; a known one keeps the columns not overridden', T, async () => {
    const a = await postJSON(`${pd.url}/v1/chat/completions`, { ...chat('hello there'), model: 'renamed' });
    assert.equal(a.headers['x-pendulum-cost-usd'], (8 * 1e-6 + 5 * 2e-6).toFixed(6));
    const b = await postJSON(`${pd.url}/v1/chat/completions`, chat('hello there'));
    assert.equal(b.headers['x-pendulum-cost-usd'], (8 * 2.5e-6 + 5 * 20e-6).toFixed(6));
  });

  test('a local target with a cost model charges its hardware price per request', T, async () => {
    const r = await postJSON(`${pd.url}/v1/chat/completions`, { ...chat('hello there'), model: 'local-llama' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-cost-usd'], (1.006 / 800).toFixed(6));
  });
});

describe('all-cloud per route in the report and the dashboard', () => {
  // A local provider (local: true, the same mock behind it) and the cloud gpt-4o. Route cheap
  // tries the local model first; route auto sends PII to the local branch. Their cloud target
  // is gpt-4o, so all-cloud prices their local requests at gpt-4o's list price ($2.50 / $10 per
  // million), and the direct gpt-4o request as it was charged.
  let mock, pd;
  before(async () => {
    mock = await startMock({ port: 0 });
    pd = await startPendulum({
      providers: [...mockProviders(mock.port), { name: 'home', kind: 'openai', base_url: `${mock.url}/v1`, local: true }],
      models: [...MOCK_MODELS, { name: 'local-llama', provider: 'home' }],
      extra: 'routes:\n  - { name: cheap, policy: fallback, targets: [local-llama, gpt-4o] }\n' +
        '  - { name: auto, policy: privacy, local: local-llama, cloud: gpt-4o }',
    });
  }, { timeout: 20000 });
  after(async () => { if (pd && !pd.stopped) await pd.stop(); await mock.close(); });

  test('local requests are priced at their route\'s cloud target, cloud ones as charged', T, async () => {
    const sent = [
      { ...chat('one'), model: 'cheap' },
      { ...chat('two'), model: 'cheap' },
      { ...chat('mail me at jane.doe@example.com'), model: 'auto' },
      chat('three'),
    ];
    for (const body of sent) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, body);
      assert.equal(r.status, 200, r.text);
    }
    let dash;
    await waitFor(async () => {
      dash = JSON.parse((await request(`${pd.url}/ui/api/dashboard?minutes=5`)).text);
      return dash.totals && dash.totals.requests === 4;
    }, { timeoutMs: 5000, what: 'the four requests in the ledger' });
    const db = path.join(pd.dir, 'ledger.db');
    const local = rows(db, "SELECT prompt_tokens AS i, completion_tokens AS o FROM pendulum_requests WHERE target = 'local-llama'");
    assert.equal(local.length, 3);
    const [cloudRow] = rows(db, "SELECT cost_usd FROM pendulum_requests WHERE target = 'gpt-4o'");
    const atGpt4o = local.reduce((s, r) => s + r.i * 2.5e-6 + r.o * 10e-6, 0);

    const check = (doc, where) => {
      assert.deepEqual(doc.all_cloud, { by: 'route', reference_model: 'gpt-4o' }, where);
      assert.deepEqual(doc.totals.all_cloud_basis, { route_target: 3, charged: 1, reference: 0,
        no_cloud_target: 0, unknown_route: 0, unpriced_target: 0 }, where);
      assert.ok(Math.abs(doc.totals.all_cloud_usd - (atGpt4o + cloudRow.cost_usd)) < 1e-12, where);
      const routes = Object.fromEntries(doc.routes.map((g) => [g.name, g]));
      assert.equal(routes.cheap.cloud_target, 'gpt-4o', where);
      assert.equal(routes.auto.cloud_target, 'gpt-4o', where);
      assert.equal(routes['gpt-4o'].cloud_target, 'gpt-4o', where);
      assert.ok(Math.abs(routes['gpt-4o'].savings_usd) < 1e-12, where);
      const byTarget = Object.fromEntries(doc.targets.map((g) => [g.name, g]));
      assert.equal(byTarget['local-llama'].local, true, where);
      // The calculator compares the model this traffic used: gpt-4o served the direct request
      // and priced the three local ones (their routes' cloud target).
      assert.deepEqual(doc.calculator.observed.apis, [{ model: 'gpt-4o', served: 1, priced: 3, reference: 0 }], where);
      assert.deepEqual(doc.calculator.options.map((o) => o.name), ['gpt-4o', 'self-hosted'], where);
      assert.equal(doc.calculator.options[1].label, 'local targets: local-llama', where);
      assert.equal(doc.calculator.observed.requests, 4, where);
    };
    check(dash, 'dashboard');
    const cli = JSON.parse(execFileSync(pendulumBin(), ['report', '--json', '--config', path.join(pd.dir, 'pendulum.yaml'), '--since', '1h'],
      { encoding: 'utf8' }));
    check(cli, 'pendulum report --config');
    assert.deepEqual(cli.totals, dash.totals, 'one implementation, the same numbers');
  });
});
