// Judged answers through the real gateway: the low_confidence trigger of a fallback chain and
// speculative execution (local and cloud raced, the local answer kept when it is good). The
// mocks' own request logs say who was asked what; the mock's `logprob` and `reply` knobs make an
// answer confident or not, empty, a refusal, or a loop.

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock/openai-mock.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startPendulum } from './lib/pendulum.mjs';
import { llamaSkipReason, startLlama } from './lib/llama.mjs';
import { request, postJSON, streamSSE, mockControl, mockChatRequests, waitFor } from './lib/http.mjs';

const T = { timeout: 20000 };
const ROUTES = `routes:
  - name: careful
    policy: fallback
    targets: [local-model, gpt-4o]
    confidence: { min_mean: -1.0, min_window: -2.0, window: 4, after_tokens: 3 }
  - name: race
    policy: speculative
    targets: [local-model, gpt-4o]
    confidence: { min_mean: -1.0, after_tokens: 3 }`;

const msg = (model, content, extra = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });
const textOf = (events) => events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');

describe('judged answers', () => {
  let cloud, local, pd;
  before(async () => {
    cloud = await startMock({ port: 0 });
    local = await startMock({ port: 0 });
    pd = await startPendulum({
      providers: [
        { name: 'cloud', kind: 'openai', base_url: `${cloud.url}/v1`, api_key: 'k' },
        { name: 'home', kind: 'openai', base_url: `${local.url}/v1`, local: true },
      ],
      models: [
        { name: 'gpt-4o', provider: 'cloud' },
        { name: 'local-model', provider: 'home' },
      ],
      extra: ROUTES,
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await cloud.close(); await local.close(); });
  beforeEach(() => { cloud.reset(); local.reset(); });

  test('low confidence (whole): the next target answers; logprobs asked for the gate are not shown', T, async () => {
    await mockControl(local.url, { logprob: -3 });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('careful', 'hello there'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
    assert.equal(r.headers['x-pendulum-attempts'], '2');
    assert.match(r.headers['x-pendulum-reason'], /low confidence on local-model \(mean logprob -3\.00 < -1\.00\)/);
    assert.equal(r.json.choices[0].logprobs ?? null, null, 'the client did not ask for logprobs');
    const asked = await mockChatRequests(local.url);
    assert.equal(asked.length, 1);
    assert.equal(asked[0].body.logprobs, true, 'the gate asks the upstream for logprobs');
    assert.equal((await mockChatRequests(cloud.url)).length, 1);
  });

  test('confident (whole): the local answer is kept, the cloud is never asked', T, async () => {
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('careful', 'hello there'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'local-model');
    assert.equal(r.json.choices[0].message.content, 'mock reply to: hello there');
    assert.equal((await mockChatRequests(cloud.url)).length, 0);
  });

  test('the client asked for logprobs: they stay in the answer', T, async () => {
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('careful', 'hello there', { logprobs: true }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].logprobs.content[0].logprob, -0.25);
  });

  test('low confidence (stream): decided after the first tokens; the client sees only the next target', T, async () => {
    await mockControl(local.url, { logprob: -3, drip_ms: 20 });
    const r = await streamSSE(`${pd.url}/v1/chat/completions`, msg('careful', 'one two three four five', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
    assert.equal(r.end, 'complete');
    assert.equal(textOf(r.events), 'mock reply to: one two three four five');
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.ok(r.events.every((e) => !e.json?.choices?.[0]?.logprobs), 'no gate logprobs reach the client');
    const localReq = await mockChatRequests(local.url);
    assert.equal(localReq.length, 1);
  });

  test('confident (stream): the held start is released and the stream goes on', T, async () => {
    const r = await streamSSE(`${pd.url}/v1/chat/completions`, msg('careful', 'alpha beta gamma delta', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-pendulum-target'], 'local-model');
    assert.equal(textOf(r.events), 'mock reply to: alpha beta gamma delta');
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.equal((await mockChatRequests(cloud.url)).length, 0);
  });

  test('speculative (whole): a good local answer wins and the cloud transfer is aborted', T, async () => {
    await mockControl(cloud.url, { latency_ms: 1500 });
    // The local answer waits 300 ms, so that the cloud request has surely reached its mock
    // (which logs a request once its body is in) before the win aborts it: an immediate local
    // answer on a busy machine once aborted the cloud transfer before the mock had read it.
    await mockControl(local.url, { latency_ms: 300 });
    const t0 = Date.now();
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('race', 'quick question'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'local-model');
    assert.ok(Date.now() - t0 < 1400, 'the local answer did not wait for the cloud');
    const cloudReq = await waitFor(async () => {
      const q = await mockChatRequests(cloud.url);
      return q.length === 1 && q[0].aborted ? q : null;
    }, { what: 'the cloud request aborted' });
    assert.equal(cloudReq[0].body.model, 'gpt-4o', 'both were started');
  });

  test('speculative (whole): a refusal from the local model -> the cloud answer', T, async () => {
    await mockControl(local.url, { reply: "I'm sorry, I cannot help with that." });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('race', 'quick question'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
    assert.equal(r.json.choices[0].message.content, 'mock reply to: quick question');
    assert.match(r.headers['x-pendulum-reason'], /speculative: local-model failed \(a refusal\) -> gpt-4o/);
  });

  test('speculative (whole): a degenerate local answer -> the cloud answer', T, async () => {
    await mockControl(local.url, { reply: 'ok '.repeat(40) });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('race', 'quick question'));
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
  });

  test('speculative (whole): JSON asked for, the local answer is not JSON -> the cloud answer', T, async () => {
    await mockControl(local.url, { reply: 'not json at all' });
    const r = await postJSON(`${pd.url}/v1/chat/completions`,
      msg('race', 'give json', { response_format: { type: 'json_object' } }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
    assert.deepEqual(JSON.parse(r.json.choices[0].message.content), { reply: 'mock reply to: give json' });
  });

  test('speculative (whole): the local target fails -> the cloud answer, no third request', T, async () => {
    await mockControl(local.url, { status: 500 });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('race', 'quick question'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
    assert.equal((await mockChatRequests(cloud.url)).length, 1);
  });

  test('speculative: the cloud fails -> the local answer, whatever its quality', T, async () => {
    await mockControl(cloud.url, { status: 503 });
    await mockControl(local.url, { logprob: -5, latency_ms: 300 });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('race', 'quick question'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'local-model');
  });

  test('speculative (stream): a good local start wins; low confidence -> the cloud stream', T, async () => {
    await mockControl(cloud.url, { drip_ms: 30 });
    const good = await streamSSE(`${pd.url}/v1/chat/completions`, msg('race', 'red green blue', { stream: true }));
    assert.equal(good.headers['x-pendulum-target'], 'local-model');
    assert.equal(textOf(good.events), 'mock reply to: red green blue');
    assert.equal(good.events.at(-1).data, '[DONE]');

    cloud.reset();
    local.reset();
    await mockControl(local.url, { logprob: -4 });
    const bad = await streamSSE(`${pd.url}/v1/chat/completions`, msg('race', 'red green blue', { stream: true }));
    assert.equal(bad.headers['x-pendulum-target'], 'gpt-4o');
    assert.equal(bad.end, 'complete');
    assert.equal(textOf(bad.events), 'mock reply to: red green blue');
    assert.equal(bad.events.at(-1).data, '[DONE]');
  });

  test('speculative: both attempts are in the ledger, the loser under <id>-race', T, async () => {
    await mockControl(cloud.url, { latency_ms: 800 });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('race', 'ledger check'));
    assert.equal(r.status, 200);
    const id = r.headers['x-request-id'];
    const db = path.join(pd.dir, 'ledger.db');
    const sql = `SELECT id, target, status FROM pendulum_requests WHERE id LIKE '${id}%' ORDER BY id`;
    const rows = await waitFor(() => {
      const out = execFileSync('sqlite3', ['-json', db, sql], { encoding: 'utf8' }).trim();
      const q = out ? JSON.parse(out) : [];
      return q.length === 2 ? q : null;
    }, { what: 'two ledger rows', timeoutMs: 8000 });
    assert.deepEqual(rows.map((x) => [x.id, x.target, x.status]),
      [[id, 'local-model', 200], [`${id}-race`, 'gpt-4o', 499]]);
  });
});

// The local racer is the embedded engine (greedy on the tiny random-weight model, so its tokens
// have low log-probabilities): a threshold it meets keeps it, one it cannot meet hands over.
describe('speculative with the embedded engine', { skip: !process.env.TINY_MODEL && 'TINY_MODEL not set' }, () => {
  let cloud, pd;
  before(async () => {
    cloud = await startMock({ port: 0 });
    pd = await startPendulum({
      providers: [
        { name: 'cloud', kind: 'openai', base_url: `${cloud.url}/v1`, api_key: 'k' },
        { name: 'engine', kind: 'llama', model_path: process.env.TINY_MODEL, ctx_size: 1024, parallel: 2, threads: 1 },
      ],
      models: [{ name: 'gpt-4o', provider: 'cloud' }, { name: 'tiny', provider: 'engine' }],
      extra: `routes:
  - { name: lenient, policy: speculative, targets: [tiny, gpt-4o], confidence: { min_mean: -999, after_tokens: 4 } }
  - { name: strict, policy: speculative, targets: [tiny, gpt-4o], confidence: { min_mean: -0.001, after_tokens: 4 } }`,
    });
    await waitFor(async () => (await request(`${pd.url}/readyz`)).status === 200, { timeoutMs: 60000, what: 'model loaded' });
  }, { timeout: 90000 });
  after(async () => { await pd.stop(); await cloud.close(); });
  beforeEach(() => cloud.reset());

  const ask = (model, extra = {}) => msg(model, 'Tell me a story', { temperature: 0, max_tokens: 8, ...extra });

  for (const stream of [false, true]) {
    test(`engine good enough (${stream ? 'stream' : 'whole'}): the engine answers`, T, async () => {
      await mockControl(cloud.url, { latency_ms: 3000 });
      const r = stream ? await streamSSE(`${pd.url}/v1/chat/completions`, ask('lenient', { stream: true }))
        : await postJSON(`${pd.url}/v1/chat/completions`, ask('lenient'));
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pendulum-target'], 'tiny');
      if (stream) assert.equal(r.events.at(-1).data, '[DONE]');
    });

    test(`engine below the threshold (${stream ? 'stream' : 'whole'}): the cloud answers`, T, async () => {
      const r = stream ? await streamSSE(`${pd.url}/v1/chat/completions`, ask('strict', { stream: true }))
        : await postJSON(`${pd.url}/v1/chat/completions`, ask('strict'));
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
      const text = stream ? textOf(r.events) : r.json.choices[0].message.content;
      assert.equal(text, 'mock reply to: Tell me a story');
    });
  }
});

// The low_confidence trigger against the real llama-server: the gateway asks it for logprobs
// (the client did not), judges its greedy answer on the tiny random-weight model (whose tokens
// are far from confident), and either keeps it or goes to the cloud mock.
describe('low confidence with llama-server', { skip: llamaSkipReason() ?? false }, () => {
  let llama, cloud, pd;
  before(async () => {
    llama = await startLlama();
    cloud = await startMock({ port: 0 });
    pd = await startPendulum({
      upstream: { connect_ms: 2000, ttfb_ms: 30000, idle_ms: 15000, total_ms: 60000 },
      providers: [
        { name: 'cloud', kind: 'openai', base_url: `${cloud.url}/v1`, api_key: 'k' },
        { name: 'home', kind: 'openai', base_url: `${llama.url}/v1`, local: true },
      ],
      models: [{ name: 'gpt-4o', provider: 'cloud' }, { name: 'tiny-local', provider: 'home' }],
      extra: `routes:
  - { name: lenient, policy: fallback, targets: [tiny-local, gpt-4o], confidence: { min_mean: -999, after_tokens: 4 } }
  - { name: strict, policy: fallback, targets: [tiny-local, gpt-4o], confidence: { min_mean: -0.001, after_tokens: 4 } }`,
    });
  }, { timeout: 90000 });
  after(async () => {
    try {
      if (pd) await pd.stop();
    } finally {
      if (llama) await llama.stop();
      if (cloud) await cloud.close();
    }
  }, { timeout: 15000 });
  beforeEach(() => cloud.reset());

  const ask = (model, extra = {}) => msg(model, 'Tell me a story', { temperature: 0, max_tokens: 8, ...extra });

  for (const stream of [false, true]) {
    const kind = stream ? 'stream' : 'whole';
    test(`llama-server confident enough (${kind}): kept, no logprobs shown, the cloud never asked`, T, async () => {
      const r = stream ? await streamSSE(`${pd.url}/v1/chat/completions`, ask('lenient', { stream: true }))
        : await postJSON(`${pd.url}/v1/chat/completions`, ask('lenient'));
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pendulum-target'], 'tiny-local');
      if (stream) {
        assert.equal(r.events.at(-1).data, '[DONE]');
        assert.ok(r.events.every((e) => !e.json?.choices?.[0]?.logprobs), 'no gate logprobs reach the client');
      } else {
        assert.equal(r.json.choices[0].logprobs ?? null, null);
      }
      assert.equal((await mockChatRequests(cloud.url)).length, 0);
    });

    test(`llama-server below the threshold (${kind}): the cloud answers`, T, async () => {
      const r = stream ? await streamSSE(`${pd.url}/v1/chat/completions`, ask('strict', { stream: true }))
        : await postJSON(`${pd.url}/v1/chat/completions`, ask('strict'));
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
      assert.match(r.headers['x-pendulum-reason'], /low confidence on tiny-local \(mean logprob -[0-9.]+ < -0\.00\)/);
      const text = stream ? textOf(r.events) : r.json.choices[0].message.content;
      assert.equal(text, 'mock reply to: Tell me a story');
    });
  }
});
