// Load balancing across replicas of one model (policy balance: weighted, least_outstanding,
// latency) and active health checks of local replicas, checked from the replicas' own request
// logs. The balance gateway has one worker, so that the per-worker in-flight counts and latency
// averages the strategies read are the ones these requests build.

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock/openai-mock.mjs';
import { startPendulum } from './lib/pendulum.mjs';
import { request, postJSON, mockControl, mockRequests, mockChatRequests, waitFor } from './lib/http.mjs';

const T = { timeout: 30000 };
const msg = (model, content) => ({ model, messages: [{ role: 'user', content }] });

// Each test uses its own pair of models (targets), so the load one test leaves behind (latency
// averages) cannot steer another.
const ROUTES = `routes:
  - { name: weighted, policy: balance, strategy: weighted, weights: [3, 1], targets: [wa, wb] }
  - { name: least, policy: balance, strategy: least_outstanding, targets: [la, lb] }
  - { name: fastest, policy: balance, strategy: latency, targets: [fa, fb] }`;

// Sends n requests, at most `width` at a time; returns the responses.
async function sendMany(url, model, n, width) {
  const out = [];
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await postJSON(`${url}/v1/chat/completions`, msg(model, `request ${i}`));
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  return out;
}

describe('balance', () => {
  let a, b, pd;
  before(async () => {
    a = await startMock({ port: 0 });
    b = await startMock({ port: 0 });
    const models = [];
    for (const pair of ['w', 'l', 'f']) {
      models.push({ name: `${pair}a`, provider: 'ra', upstream_model: 'gpt-4o' });
      models.push({ name: `${pair}b`, provider: 'rb', upstream_model: 'gpt-4o' });
    }
    pd = await startPendulum({
      workers: 1,
      providers: [
        { name: 'ra', kind: 'openai', base_url: `${a.url}/v1`, api_key: 'k' },
        { name: 'rb', kind: 'openai', base_url: `${b.url}/v1`, api_key: 'k' },
      ],
      models,
      extra: ROUTES,
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await a.close(); await b.close(); });
  beforeEach(() => { a.reset(); b.reset(); });

  test('weighted 3:1 over 200 requests splits about 150/50', T, async () => {
    const rs = await sendMany(pd.url, 'weighted', 200, 8);
    for (const r of rs) assert.equal(r.status, 200, r.text);
    const na = (await mockChatRequests(a.url)).length;
    const nb = (await mockChatRequests(b.url)).length;
    assert.equal(na + nb, 200);
    // Binomial(200, 0.75): standard deviation 6.1; 25 is four of them.
    assert.ok(Math.abs(na - 150) <= 25, `replica a got ${na} of 200, expected about 150`);
    const reason = rs[0].headers['x-pendulum-reason'];
    assert.match(reason, /weighted: balance weighted -> w[ab] \(weight [31] of 4\)/);
  });

  test('least_outstanding sends to the idle replica while the other holds slow requests', T, async () => {
    await mockControl(a.url, { latency_ms: 1500, count: 3 });
    // Three slow requests to replica a itself (a plain model counts as the same target).
    const slow = [0, 1, 2].map((i) => postJSON(`${pd.url}/v1/chat/completions`, msg('la', `slow ${i}`)));
    await waitFor(async () => (await mockChatRequests(a.url)).length === 3, { what: 'a holds 3 requests' });
    for (let i = 0; i < 6; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('least', `quick ${i}`));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-pendulum-target'], 'lb');
      assert.match(r.headers['x-pendulum-reason'], /least: balance least_outstanding -> lb \(0 in flight, fewest\)/);
    }
    assert.equal((await mockChatRequests(b.url)).length, 6);
    assert.equal((await mockChatRequests(a.url)).length, 3, 'the busy replica got nothing more');
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200);
    // Idle again: the rotation spreads sequential requests over both.
    const after2 = [];
    for (let i = 0; i < 4; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('least', `again ${i}`));
      after2.push(r.headers['x-pendulum-target']);
    }
    assert.ok(after2.includes('la') && after2.includes('lb'), `both replicas serve once idle: ${after2}`);
  });

  test('latency explores both replicas, then prefers the fast one', T, async () => {
    await mockControl(a.url, { latency_ms: 250, count: 1000 });
    const explore = [];
    for (let i = 0; i < 2; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('fastest', `warm ${i}`));
      assert.equal(r.status, 200, r.text);
      explore.push(r.headers['x-pendulum-target']);
      assert.match(r.headers['x-pendulum-reason'], /no latency sample yet, exploring/);
    }
    assert.deepEqual([...explore].sort(), ['fa', 'fb'], 'each replica is tried once first');
    for (let i = 0; i < 10; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('fastest', `after ${i}`));
      assert.equal(r.headers['x-pendulum-target'], 'fb');
      assert.match(r.headers['x-pendulum-reason'], /fastest: balance latency -> fb \([0-9.]+ ms EWMA, lowest\)/);
    }
    assert.equal((await mockChatRequests(a.url)).length, 1, 'the slow replica saw only its exploration');
    assert.equal((await mockChatRequests(b.url)).length, 11);
  });

  // Each attempt leaves the in-flight count as it found it: an idle pair ties again, so the
  // rotation makes both replicas the pick over a few explains (a leaked count would pin lb).
  const picksWhenIdle = async () => {
    const picks = new Set();
    for (let i = 0; i < 4; i++) {
      const r = await postJSON(`${pd.url}/v1/route/explain`, msg('least', 'who'));
      assert.match(r.json.reason, /\(0 in flight, fewest\)/);
      picks.add(r.json.balance.pick);
    }
    return [...picks].sort();
  };

  test('in-flight counts return to zero after a client disconnect and after a fallback', T, async () => {
    await mockControl(a.url, { hang: true, count: 1 });
    await assert.rejects(postJSON(`${pd.url}/v1/chat/completions`, msg('la', 'gone'), { timeoutMs: 300 }));
    await waitFor(async () => (await mockChatRequests(a.url)).some((e) => e.aborted), { what: 'the upstream abort' });
    assert.deepEqual(await picksWhenIdle(), ['la', 'lb']);

    await mockControl(a.url, { status: 500, count: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('least', `fallback ${i}`));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-pendulum-target'], 'lb');
    }
    assert.ok((await mockChatRequests(a.url)).some((e) => e.status === 500), 'la failed at least once');
    assert.deepEqual(await picksWhenIdle(), ['la', 'lb']);
  });

  test('POST /v1/route/explain names the strategy and the pick', T, async () => {
    const r = await postJSON(`${pd.url}/v1/route/explain`, msg('least', 'explain'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.policy, 'balance');
    assert.equal(r.json.balance.strategy, 'least_outstanding');
    assert.ok(['la', 'lb'].includes(r.json.balance.pick));
    assert.equal(r.json.candidates[0].model, r.json.balance.pick);
    assert.match(r.json.reason, /least_outstanding/);
  });
});

// Active health checks: a local replica whose /health answers 503 is marked down after two
// failed probes, gets no chat request while it is down, and gets traffic again once /health
// recovers. Two workers: the verdict is one per process, every worker follows it.
describe('health checks', () => {
  let a, b, pd;
  const HC = { interval_ms: 200, timeout_ms: 150 };
  before(async () => {
    a = await startMock({ port: 0 });
    b = await startMock({ port: 0 });
    pd = await startPendulum({
      workers: 2,
      providers: [
        { name: 'ha', kind: 'openai', base_url: `${a.url}/v1`, api_key: '', local: true, health_check: HC },
        { name: 'hb', kind: 'openai', base_url: `${b.url}/v1`, api_key: '', local: true, health_check: HC },
      ],
      models: [
        { name: 'ha-m', provider: 'ha', upstream_model: 'gpt-4o' },
        { name: 'hb-m', provider: 'hb', upstream_model: 'gpt-4o' },
      ],
      extra: 'routes:\n  - { name: pool, policy: balance, strategy: round_robin, targets: [ha-m, hb-m] }',
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await a.close(); await b.close(); });

  const upOf = async (target) => {
    const m = await request(`${pd.url}/metrics`);
    const line = m.text.split('\n').find((l) => l.startsWith(`pendulum_target_up{target="${target}"}`));
    return line ? Number(line.split(' ').pop()) : NaN;
  };

  test('probes go to GET /health at the base URL\'s origin, not under /v1', T, async () => {
    await waitFor(async () => (await mockRequests(a.url))
      .some((e) => e.method === 'GET' && e.path === '/health'), { what: 'a probe of /health' });
    assert.equal(await upOf('ha-m'), 1);
    assert.equal(await upOf('hb-m'), 1);
  });

  test('a replica whose /health answers 503 is taken out, then back in', T, async () => {
    await mockControl(a.url, { path: '/health', status: 503, count: 1000000 });
    // Two failed probes at 200 ms apart: down well within this bound.
    await waitFor(async () => (await upOf('ha-m')) === 0, { timeoutMs: 3000, what: 'ha-m down' });
    const before = (await mockChatRequests(a.url)).length;
    const ex = await postJSON(`${pd.url}/v1/route/explain`, msg('pool', 'explain'));
    assert.deepEqual(ex.json.candidates.map((c) => [c.model, c.down]), [['hb-m', false], ['ha-m', true]]);
    assert.match(ex.json.reason, /health check down: ha-m moved last/);
    for (let i = 0; i < 20; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('pool', `while down ${i}`));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-pendulum-target'], 'hb-m');
    }
    assert.equal((await mockChatRequests(a.url)).length, before, 'no chat request reached the down replica');

    a.reset(); // /health answers 200 again
    await waitFor(async () => (await upOf('ha-m')) === 1, { timeoutMs: 3000, what: 'ha-m up again' });
    const targets = [];
    for (let i = 0; i < 10; i++) {
      const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('pool', `after ${i}`));
      assert.equal(r.status, 200, r.text);
      targets.push(r.headers['x-pendulum-target']);
    }
    assert.ok(targets.includes('ha-m'), `the recovered replica serves again: ${targets}`);
    assert.ok((await mockChatRequests(a.url)).length > 0);
  });
});
