// Resilience through the real gateway (docs/routing.md "Fallback triggers", "Retries, deadline
// and attempt budget", "Circuit breaker", "Stream continuation"): every trigger, streaming and
// not; retries with full-jitter backoff and Retry-After; the attempt budget and the deadline;
// the circuit breaker under concurrent load; a stream broken mid-answer continued by the next
// target (mocks, llama-server, the embedded engine). Everything is checked from the mocks' own
// request logs, never from what the gateway says about itself.

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock } from '../mock/openai-mock.mjs';
import { startMock as startAnthropicMock } from '../mock/anthropic-mock.mjs';
import { startPendulum, freePort } from './lib/pendulum.mjs';
import { postJSON, streamSSE, request, sleep, waitFor } from './lib/http.mjs';
import { llamaSkipReason, startLlama } from './lib/llama.mjs';

const T = { timeout: 30000 };
const CHAT = '/v1/chat/completions';
const msg = (model, content = 'hello world', extra = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });
const chats = (mock) => mock.requests().filter((e) => e.path.split('?')[0] === CHAT);
const gaps = (log) => log.slice(1).map((e, i) => e.received_at - log[i].received_at);
const textOf = (events) => events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');
const errorEvents = (events) => events.filter((e) => e.json && e.json.error);
// Slack for a loaded 2-core machine running the ASan build: bounds, never timing targets.
const SLACK_MS = 400;

// ---- triggers, retries, budget, deadline -------------------------------------------------

describe('resilience: triggers, retries, attempt budget, deadline', () => {
  let a, b, c, pd, deadPort;
  before(async () => {
    [a, b, c] = await Promise.all([startMock({ port: 0 }), startMock({ port: 0 }), startMock({ port: 0 })]);
    deadPort = await freePort();
    pd = await startPendulum({
      workers: 1,
      providers: [
        // a short ttfb on A only, so the timeout trigger does not slow the others
        { name: 'pa', kind: 'openai', base_url: `${a.url}/v1`, api_key: 'k', timeouts: { ttfb_ms: 300 } },
        { name: 'pb', kind: 'openai', base_url: `${b.url}/v1`, api_key: 'k' },
        { name: 'pc', kind: 'openai', base_url: `${c.url}/v1`, api_key: 'k' },
        { name: 'pdead', kind: 'openai', base_url: `http://127.0.0.1:${deadPort}/v1`, api_key: 'k' },
        { name: 'plocal', kind: 'openai', base_url: `${c.url}/v1`, local: true, health_check: { enabled: false } },
      ],
      models: [
        { name: 'ma', provider: 'pa', upstream_model: 'gpt-4o', context_tokens: 1000 },
        { name: 'mb', provider: 'pb', upstream_model: 'gpt-4o', context_tokens: 8000 },
        { name: 'mc', provider: 'pc', upstream_model: 'gpt-4o' },
        { name: 'mdead', provider: 'pdead' },
        { name: 'mlocal', provider: 'plocal', upstream_model: 'gpt-4o' },
      ],
      // these tests fail targets on purpose: the breaker must not hide them (it has its own tests)
      extra: `breaker: { failures: 1000 }
routes:
  - { name: chain, policy: fallback, targets: [ma, mb] }
  - { name: dead-chain, policy: fallback, targets: [mdead, mb] }
  - { name: retry, policy: fallback, targets: [ma, mb], retry: { attempts: 2, base_ms: 50, max_ms: 400 } }
  - { name: budget, policy: fallback, targets: [ma, mb, mc], max_attempts: 2 }
  - { name: late, policy: fallback, targets: [ma], deadline_ms: 300, retry: { attempts: 5, base_ms: 1000, max_ms: 1000 } }
  - { name: late-ra, policy: fallback, targets: [ma, mb], deadline_ms: 500, retry: { attempts: 3, base_ms: 50, max_ms: 5000 } }
  - { name: retry-slow, policy: fallback, targets: [ma, mb], retry: { attempts: 2, base_ms: 1000, max_ms: 2000 } }
  - { name: p-fallback, policy: fallback, targets: [ma, mb] }
  - { name: p-speculative, policy: speculative, targets: [ma, mb] }
  - { name: p-tiered, policy: tiered, tiers: [ { below: 0.5, target: ma }, { target: mb } ] }
  - { name: p-privacy, policy: privacy, pii: { action: local }, local: mlocal, cloud: ma }
  - { name: p-balance, policy: balance, strategy: round_robin, targets: [ma, mb] }
  - { name: inner, policy: fallback, targets: [ma], retry: { attempts: 3, base_ms: 10, max_ms: 20 } }
  - { name: nest, policy: fallback, targets: [inner, mb] }
  - { name: nest-budget, policy: fallback, targets: [inner, mb], max_attempts: 2 }`
        + ['connect', 'timeout', 'rate_limit', 'server', 'overloaded', 'context', 'auth'].map((t) =>
          `\n  - { name: only-${t}, policy: fallback, targets: [ma, mb], on: [${t}] }`).join('')
        + ['connect', 'timeout', 'rate_limit', 'server', 'overloaded', 'context', 'auth'].map((t) =>
          `\n  - { name: not-${t}, policy: fallback, targets: [ma, mb], on: [${t === 'connect' ? 'auth' : 'connect'}] }`).join('')
        + `\n  - { name: dead-only-connect, policy: fallback, targets: [mdead, mb], on: [connect] }`
        + `\n  - { name: dead-not-connect, policy: fallback, targets: [mdead, mb], on: [server] }`,
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await Promise.all([a.close(), b.close(), c.close()]); });
  beforeEach(() => { a.reset(); b.reset(); c.reset(); });

  // One knob on A per trigger (connect uses a port nobody listens on).
  const TRIGGERS = {
    timeout: { hang: true },
    rate_limit: { status: 429 },
    server: { status: 500 },
    overloaded: { status: 529 },
    context: { status: 400, error: { message: 'too long', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } },
    auth: { status: 401 },
  };

  for (const stream of [false, true]) {
    const mode = stream ? 'stream' : 'whole';
    const ask = (route) => stream
      ? streamSSE(`${pd.url}${CHAT}`, msg(route, 'hello world', { stream: true }))
      : postJSON(`${pd.url}${CHAT}`, msg(route));
    const ok = (r) => {
      assert.equal(r.status, 200, r.text ?? r.raw);
      if (stream) {
        assert.equal(r.end, 'complete');
        assert.equal(r.events.at(-1).data, '[DONE]');
        assert.equal(textOf(r.events), 'mock reply to: hello world');
      } else {
        assert.equal(r.json.choices[0].message.content, 'mock reply to: hello world');
      }
    };

    for (const [trigger, knob] of Object.entries(TRIGGERS)) {
      test(`trigger ${trigger} (${mode}): on: [${trigger}] moves on to the next target; without it the client gets the failure`, T, async () => {
        a.control({ ...knob, count: 2 });
        const r = await ask(`only-${trigger}`);
        ok(r);
        assert.equal(r.headers['x-pendulum-target'], 'mb');
        assert.equal(chats(a).length, 1, 'A saw the request once');
        assert.equal(chats(b).length, 1, 'B served it');
        const no = await ask(`not-${trigger}`);
        assert.equal(chats(b).length, 1, 'B saw nothing more: the failure was not a trigger of this route');
        assert.equal(chats(a).length, 2);
        if (trigger === 'timeout') assert.equal(no.status, 504);
        else assert.equal(no.status, knob.status, no.text ?? no.raw);
        if (stream) assert.ok(!(no.raw ?? '').includes('[DONE]'));
      });
    }

    test(`trigger connect (${mode}): a refused connection moves on; on: [server] does not`, T, async () => {
      const r = await ask('dead-only-connect');
      ok(r);
      assert.equal(r.headers['x-pendulum-attempts'], '2');
      assert.equal(chats(b).length, 1);
      const no = await ask('dead-not-connect');
      assert.equal(no.status, 502);
      assert.equal(chats(b).length, 1, 'B saw nothing more');
    });
  }

  test('retry: 500 twice then 200 -> 200 after 3 requests to A, full-jitter gaps within the caps', T, async () => {
    a.control({ status: 500, count: 2 });
    const r = await postJSON(`${pd.url}${CHAT}`, msg('retry'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'ma');
    assert.equal(r.headers['x-pendulum-attempts'], '3');
    const log = chats(a);
    assert.equal(log.length, 3);
    assert.equal(chats(b).length, 0, 'the retries stayed on A');
    const [g0, g1] = gaps(log);
    // retry 0 waits uniform(0, 50), retry 1 uniform(0, 100): never more than the cap
    assert.ok(g0 >= 0 && g0 <= 50 + SLACK_MS, `first gap ${g0} ms`);
    assert.ok(g1 >= 0 && g1 <= 100 + SLACK_MS, `second gap ${g1} ms`);
  });

  test('retry (stream): 500 twice then a stream: one complete stream, 3 requests to A', T, async () => {
    a.control({ status: 500, count: 2 });
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('retry', 'hello world', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-pendulum-attempts'], '3');
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.equal(textOf(r.events), 'mock reply to: hello world');
    assert.equal(chats(a).length, 3);
    assert.equal(chats(b).length, 0);
  });

  test('retry: the retries of many requests are spread (full jitter), never above the cap', { timeout: 60000 }, async () => {
    // 20 requests, each 500 once then 200: each first retry waits uniform(0, 50) ms
    const first = [];
    for (let i = 0; i < 20; i++) {
      a.reset();
      a.control({ status: 500 });
      const r = await postJSON(`${pd.url}${CHAT}`, msg('retry'));
      assert.equal(r.status, 200, r.text);
      assert.equal(chats(a).length, 2);
      first.push(gaps(chats(a))[0]);
    }
    assert.ok(first.every((g) => g >= 0 && g <= 50 + SLACK_MS), `gaps ${first}`);
  });

  test('retry: retry-after-ms 300 is honoured: the retry comes at least 300 ms later', T, async () => {
    a.control({ status: 503, headers: { 'retry-after-ms': '300' } });
    const r = await postJSON(`${pd.url}${CHAT}`, msg('retry'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-attempts'], '2');
    const [g] = gaps(chats(a));
    assert.ok(g >= 300, `gap ${g} ms >= 300`);
    assert.ok(g <= 300 + SLACK_MS * 2, `gap ${g} ms: not much more`);
    assert.equal(chats(b).length, 0);
  });

  test('retry: a 429 with retry-after: 1 (1 s > max_ms 400) goes to the next target at once', T, async () => {
    a.control({ status: 429, headers: { 'retry-after': '1' } });
    const r = await postJSON(`${pd.url}${CHAT}`, msg('retry'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'mb');
    assert.equal(chats(a).length, 1, 'A was not retried');
    assert.equal(chats(b).length, 1);
    const waited = chats(b)[0].received_at - chats(a)[0].received_at;
    assert.ok(waited < 1000, `B was asked ${waited} ms after A: it did not wait out the Retry-After`);
  });

  test('retry: a client that leaves during the backoff is not retried for', T, async () => {
    a.control({ status: 503, headers: { 'retry-after-ms': '1200' } });
    await assert.rejects(postJSON(`${pd.url}${CHAT}`, msg('retry-slow'), { timeoutMs: 300 }));
    await sleep(1800);
    assert.equal(chats(a).length, 1, 'no retry after the client left');
    assert.equal(chats(b).length, 0);
    pd.checkAlive();
  });

  test('retry: a 400 is never retried nor sent elsewhere', T, async () => {
    a.control({ status: 400, count: 3 });
    const r = await postJSON(`${pd.url}${CHAT}`, msg('retry'));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.headers['x-pendulum-attempts'], '1');
    assert.equal(chats(a).length, 1);
    assert.equal(chats(b).length, 0);
  });

  test('retry: every retry fails -> attempts + 1 requests to A, then B serves', T, async () => {
    a.control({ status: 500, count: 5 });
    const r = await postJSON(`${pd.url}${CHAT}`, msg('retry'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'mb');
    assert.equal(r.headers['x-pendulum-attempts'], '4');
    assert.equal(chats(a).length, 3);
    assert.equal(chats(b).length, 1);
  });

  test('budget: max_attempts 2 over a 3-target chain that all fail: exactly 2 upstream requests', T, async () => {
    for (const stream of [false, true]) {
      for (const m of [a, b, c]) {
        m.reset();
        m.control({ status: 500, count: 5 });
      }
      const body = msg('budget', 'hello world', stream ? { stream: true } : {});
      const r = stream ? await streamSSE(`${pd.url}${CHAT}`, body) : await postJSON(`${pd.url}${CHAT}`, body);
      assert.equal(r.status, 500, r.text ?? r.raw);
      assert.equal(chats(a).length + chats(b).length + chats(c).length, 2, `${stream ? 'stream' : 'whole'}: 2 requests in all`);
      assert.equal(chats(c).length, 0);
    }
  });

  for (const stream of [false, true]) {
    const mode = stream ? 'stream' : 'whole';
    const ask = (route, content = 'hello world') => stream
      ? streamSSE(`${pd.url}${CHAT}`, msg(route, content, { stream: true }))
      : postJSON(`${pd.url}${CHAT}`, msg(route, content));
    const served = (r) => {
      assert.equal(r.status, 200, r.text ?? r.raw);
      if (stream) assert.equal(r.events.at(-1).data, '[DONE]');
    };

    test(`every policy (${mode}): a 500 from the first candidate moves on to the next`, T, async () => {
      for (const [route, next] of [['p-fallback', b], ['p-speculative', b], ['p-tiered', b], ['p-privacy', c]]) {
        a.reset(); b.reset(); c.reset();
        a.control({ status: 500 });
        const r = await ask(route);
        served(r);
        assert.equal(chats(a).length, 1, `${route}: A first`);
        assert.equal(chats(next).length, 1, `${route}: then the next candidate`);
      }
      // balance (round robin): whichever request A goes first for fails over to B
      a.reset(); b.reset();
      a.control({ status: 500 });
      for (const r of [await ask('p-balance'), await ask('p-balance')]) served(r);
      assert.equal(chats(a).length, 1);
      assert.equal(chats(b).length, 2);
    });

    test(`nested routes (${mode}): a candidate follows its own route's retries; the outer route's budget bounds them`, T, async () => {
      a.control({ status: 500, count: 10 });
      const r = await ask('nest');
      served(r);
      assert.equal(chats(a).length, 4, 'inner: 1 + 3 retries');
      assert.equal(chats(b).length, 1);
      assert.equal(r.headers['x-pendulum-attempts'], '5');
      a.reset(); b.reset();
      a.control({ status: 500, count: 10 });
      const capped = await ask('nest-budget');
      assert.equal(capped.status, 500);
      assert.equal(chats(a).length + chats(b).length, 2, 'max_attempts 2 of the route asked for');
    });
  }

  test('budget under concurrent load: 30 requests over a failing 3-target chain with max_attempts 2: exactly 60 upstream requests', T, async () => {
    for (const m of [a, b, c]) m.control({ status: 500, count: 1000 });
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => postJSON(`${pd.url}${CHAT}`, msg('budget', `c${i}`))));
    for (const r of rs) {
      assert.equal(r.status, 500, r.text);
      assert.equal(r.headers['x-pendulum-attempts'], '2');
    }
    assert.equal(chats(a).length + chats(b).length + chats(c).length, 60);
    // per request (its text): never more than 2
    const per = new Map();
    for (const e of [...chats(a), ...chats(b), ...chats(c)]) {
      const k = e.body.messages[0].content;
      per.set(k, (per.get(k) ?? 0) + 1);
    }
    assert.equal(per.size, 30);
    for (const [k, n] of per) assert.equal(n, 2, k);
  });

  test('retries under concurrent load: 30 requests, each A fails twice: never more than 1 + 2 attempts per request', T, async () => {
    a.control({ status: 500, count: 60 });
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => postJSON(`${pd.url}${CHAT}`, msg('retry', `r${i}`))));
    const per = new Map();
    for (const e of chats(a)) {
      const k = e.body.messages[0].content;
      per.set(k, (per.get(k) ?? 0) + 1);
    }
    for (const r of rs) assert.equal(r.status, 200, r.text);
    for (const [k, n] of per) assert.ok(n <= 3, `${k}: ${n} requests to A`);
    const total = [...per.values()].reduce((x, y) => x + y, 0);
    assert.equal(total, chats(a).length);
    // requests whose retries were all spent on the 60 failures went on to B
    for (const r of rs) assert.ok(Number(r.headers['x-pendulum-attempts']) <= 4);
  });

  test('deadline: with backoffs far longer than deadline_ms, no attempt starts after the deadline', T, async () => {
    a.control({ status: 500, count: 10 });
    const t0 = Date.now();
    const r = await postJSON(`${pd.url}${CHAT}`, msg('late'));
    const took = Date.now() - t0;
    assert.equal(r.status, 500, r.text);
    const log = chats(a);
    assert.ok(log.length >= 1 && log.length <= 6);
    for (const e of log) assert.ok(e.received_at - t0 <= 300 + SLACK_MS, `an attempt ${e.received_at - t0} ms after the request`);
    // 5 retries of uniform(0, 1000) ms each would take 2.5 s on average
    assert.ok(took < 300 + 2 * SLACK_MS, `answered after ${took} ms`);
    assert.equal(r.headers['x-pendulum-attempts'], String(log.length));
  });

  test('deadline: a Retry-After that ends past the deadline is not waited for; the next target serves at once', T, async () => {
    a.control({ status: 503, headers: { 'retry-after-ms': '1500' } });
    const r = await postJSON(`${pd.url}${CHAT}`, msg('late-ra'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'mb');
    assert.equal(chats(a).length, 1);
    assert.ok(chats(b)[0].received_at - chats(a)[0].received_at < 1500);
  });
});

// ---- circuit breaker ---------------------------------------------------------------------

describe('resilience: circuit breaker under concurrent load (1 worker: its breaker is exact)', () => {
  const COOLDOWN = 2500;
  let bad, good, pd;
  before(async () => {
    [bad, good] = await Promise.all([startMock({ port: 0 }), startMock({ port: 0 })]);
    pd = await startPendulum({
      workers: 1,
      providers: [
        { name: 'pbad', kind: 'openai', base_url: `${bad.url}/v1`, api_key: 'k' },
        { name: 'pgood', kind: 'openai', base_url: `${good.url}/v1`, api_key: 'k' },
      ],
      models: [{ name: 'bad', provider: 'pbad', upstream_model: 'gpt-4o' }, { name: 'good', provider: 'pgood', upstream_model: 'gpt-4o' }],
      extra: `breaker: { failures: 5, window_ms: 30000, cooldown_ms: ${COOLDOWN} }
routes:
  - { name: cb, policy: fallback, targets: [bad, good] }
  - { name: cb-connect, policy: fallback, targets: [bad, good], on: [connect] }`,
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await Promise.all([bad.close(), good.close()]); });

  const fire = (n, extra = {}) => Promise.all(Array.from({ length: n }, (_, i) =>
    extra.stream ? streamSSE(`${pd.url}${CHAT}`, msg('cb', `q${i}`, extra), { timeoutMs: 20000 })
      : postJSON(`${pd.url}${CHAT}`, msg('cb', `q${i}`, extra), { timeoutMs: 20000 })));
  const allOk = (rs) => {
    for (const r of rs) {
      assert.equal(r.status, 200, r.text ?? r.raw);
      if (r.events) assert.equal(r.events.at(-1).data, '[DONE]');
    }
  };

  test('opens after exactly 5 failures, sends nothing to the open target under load, probes once after the cooldown', { timeout: 60000 }, async () => {
    bad.control({ status: 500, count: 100000 });
    // sequential: the breaker's count is exact
    for (let i = 0; i < 8; i++) {
      const r = await postJSON(`${pd.url}${CHAT}`, msg('cb', `s${i}`));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-pendulum-target'], 'good');
    }
    assert.equal(chats(bad).length, 5, 'the 6th request onwards skipped the open target');
    // concurrent load while open: not one request reaches it
    const openedAt = chats(bad).at(-1).received_at;
    allOk(await fire(50));
    allOk(await fire(30, { stream: true }));
    assert.ok(Date.now() - openedAt < COOLDOWN, 'the load ran within the cooldown (else this test proves nothing)');
    assert.equal(chats(bad).length, 5, 'no request to the open target');
    assert.equal(chats(good).length, 8 + 50 + 30);
    // with no other target the relay answers itself rather than send to the open circuit
    const solo = await Promise.all(Array.from({ length: 10 }, () => postJSON(`${pd.url}${CHAT}`, msg('bad'))));
    for (const r of solo) {
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.error.code, 'circuit_open');
    }
    assert.equal(chats(bad).length, 5, 'still no request to the open target');

    // after the cooldown: exactly one probe among 40 concurrent requests; it fails and reopens
    await sleep(COOLDOWN + 200);
    allOk(await fire(40));
    assert.equal(chats(bad).length, 6, 'one probe');
    allOk(await fire(20));
    assert.equal(chats(bad).length, 6, 'the failed probe opened the circuit again');

    // the target recovers: after the cooldown the probe succeeds and closes the circuit
    bad.reset();
    await sleep(COOLDOWN + 200);
    const rs = await fire(20);
    allOk(rs);
    assert.equal(chats(bad).length, 1, 'one probe among 20 concurrent requests');
    assert.equal(rs.filter((r) => r.headers['x-pendulum-target'] === 'bad').length, 1);
    const after = await fire(10);
    allOk(after);
    assert.equal(chats(bad).length, 11, 'closed: traffic flows to the first target again');
  });

  test('concurrent failures: the first wave sends at most its own size, the next wave none', { timeout: 60000 }, async () => {
    // a fresh failure burst on a closed breaker (the previous test closed it)
    bad.reset();
    good.reset();
    bad.control({ status: 500, count: 100000 });
    allOk(await fire(50));
    const first = chats(bad).length;
    assert.ok(first >= 5 && first <= 50, `${first} requests reached the failing target`);
    allOk(await fire(50));
    assert.equal(chats(bad).length, first, 'none while open');
    bad.reset();
    await sleep(COOLDOWN + 200);
    // the probe is a stream this time: a stream that ends well closes the circuit too
    allOk(await fire(1, { stream: true }));
    assert.equal(chats(bad).length, 1, 'the probe');
    allOk(await fire(5));
    assert.equal(chats(bad).length, 6, 'closed by the streamed probe');
  });

  test('a probe whose client leaves (abandon) lets the next request probe', { timeout: 60000 }, async () => {
    bad.reset();
    bad.control({ status: 500, count: 5 });
    for (let i = 0; i < 5; i++) await postJSON(`${pd.url}${CHAT}`, msg('cb', `x${i}`));
    assert.equal(chats(bad).length, 5);
    await sleep(COOLDOWN + 200);
    bad.control({ hang: true });
    // the probe hangs; its client gives up
    await assert.rejects(postJSON(`${pd.url}${CHAT}`, msg('cb', 'probe'), { timeoutMs: 500 }));
    await waitFor(() => chats(bad).at(-1)?.aborted, { timeoutMs: 5000, what: 'the probe aborted upstream' });
    assert.equal(chats(bad).length, 6);
    const r = await postJSON(`${pd.url}${CHAT}`, msg('cb', 'next'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'bad', 'the next request was the new probe');
    assert.equal(chats(bad).length, 7);
  });

  test('a probe answered with a failure that is not a trigger of its route gives no verdict: the next request probes', { timeout: 60000 }, async () => {
    bad.reset();
    bad.control({ status: 500, count: 6 });
    for (let i = 0; i < 5; i++) await postJSON(`${pd.url}${CHAT}`, msg('cb', `y${i}`));
    assert.equal(chats(bad).length, 5);
    await sleep(COOLDOWN + 200);
    // the probe: a 500 under `on: [connect]` goes to the client and says nothing of the target
    const probe = await postJSON(`${pd.url}${CHAT}`, msg('cb-connect', 'probe'));
    assert.equal(probe.status, 500, probe.text);
    assert.equal(chats(bad).length, 6);
    const r = await postJSON(`${pd.url}${CHAT}`, msg('cb', 'next'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'bad', 'the next request was the new probe');
  });

  test('streams that break mid-answer with nobody to continue them count as failures; so does a broken probe', { timeout: 60000 }, async () => {
    bad.reset();
    good.reset();
    bad.control({ cut_after: 2, count: 6 });
    for (let i = 0; i < 5; i++) {
      const r = await streamSSE(`${pd.url}${CHAT}`, msg('bad', `z${i}`, { stream: true }));
      assert.equal(r.status, 200);
      assert.ok(!r.raw.includes('[DONE]'));
      assert.equal(errorEvents(r.events).length, 1);
    }
    assert.equal(chats(bad).length, 5);
    let r = await postJSON(`${pd.url}${CHAT}`, msg('cb', 'open?'));
    assert.equal(r.headers['x-pendulum-target'], 'good', 'five broken streams opened the circuit');
    assert.equal(chats(bad).length, 5);
    await sleep(COOLDOWN + 200);
    const probe = await streamSSE(`${pd.url}${CHAT}`, msg('bad', 'probe', { stream: true }));
    assert.equal(errorEvents(probe.events).length, 1);
    assert.equal(chats(bad).length, 6, 'the probe');
    r = await postJSON(`${pd.url}${CHAT}`, msg('cb', 'reopened?'));
    assert.equal(r.headers['x-pendulum-target'], 'good', 'the broken probe opened it again');
    await sleep(COOLDOWN + 200);
    r = await postJSON(`${pd.url}${CHAT}`, msg('cb', 'probe again'));
    assert.equal(r.headers['x-pendulum-target'], 'bad', 'another cooldown, another probe (nothing stuck)');
  });
});

// ---- stream continuation -----------------------------------------------------------------

// Anthropic stream validity: message_start first and once, blocks opened and closed in order,
// message_delta then message_stop last, no error event.
function assertAnthropicStream(events) {
  const real = events.filter((e) => e.event !== 'ping');
  assert.equal(real[0].event, 'message_start');
  assert.equal(real.filter((e) => e.event === 'message_start').length, 1, 'one message_start');
  let open = -1;
  let next = 0;
  for (const e of real.slice(1)) {
    assert.notEqual(e.event, 'error', `no error event: ${e.data}`);
    if (e.event === 'content_block_start') {
      assert.equal(open, -1, 'no block is open when one starts');
      assert.equal(e.json.index, next++);
      open = e.json.index;
    } else if (e.event === 'content_block_delta') {
      assert.equal(e.json.index, open, 'deltas belong to the open block');
    } else if (e.event === 'content_block_stop') {
      assert.equal(e.json.index, open);
      open = -1;
    }
  }
  assert.deepEqual(real.slice(-2).map((e) => e.event), ['message_delta', 'message_stop']);
  assert.equal(open, -1);
}

describe('resilience: a broken stream continued by the next target', () => {
  let a, b, claude, claude2, pd, oai, anth;
  before(async () => {
    [a, b, claude, claude2] = await Promise.all([startMock({ port: 0 }), startMock({ port: 0 }), startAnthropicMock({ port: 0 }),
      startAnthropicMock({ port: 0 })]);
    pd = await startPendulum({
      workers: 1,
      providers: [
        { name: 'pa', kind: 'openai', base_url: `${a.url}/v1`, api_key: 'k' },
        { name: 'pb', kind: 'openai', base_url: `${b.url}/v1`, api_key: 'k' },
        { name: 'pc', kind: 'anthropic', base_url: claude.url, api_key: 'k' },
        { name: 'pc2', kind: 'anthropic', base_url: claude2.url, api_key: 'k' },
      ],
      models: [{ name: 'ma', provider: 'pa', upstream_model: 'gpt-4o' }, { name: 'mb', provider: 'pb', upstream_model: 'gpt-4o' },
        { name: 'mclaude', provider: 'pc', upstream_model: 'claude-mock' },
        { name: 'mclaude2', provider: 'pc2', upstream_model: 'claude-mock' }],
      extra: `breaker: { failures: 1000 }
routes:
  - { name: cont, policy: fallback, targets: [ma, mb] }
  - { name: cont-retry, policy: fallback, targets: [ma, mb], retry: { attempts: 1, base_ms: 10, max_ms: 50 } }
  - { name: cont-claude, policy: fallback, targets: [ma, mclaude] }
  - { name: claude-chain, policy: fallback, targets: [mclaude, mclaude2] }
  - { name: cont-one-attempt, policy: fallback, targets: [ma, mb], max_attempts: 1 }
  - { name: solo, policy: fallback, targets: [ma] }`,
    });
    oai = new OpenAI({ baseURL: `${pd.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
    anth = new Anthropic({ baseURL: pd.url, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await Promise.all([a.close(), b.close(), claude.close(), claude2.close()]); });
  beforeEach(() => { a.reset(); b.reset(); claude.reset(); claude2.reset(); });

  const USER = 'one two three four five';
  const FULL = `mock reply to: ${USER}`;

  // The events are: role, "mock", " reply", " to:", ...: cut after 4 leaves "mock reply to:".
  for (const [name, knob] of [['cut after 4 events', { cut_after: 4 }], ['an error event at 5', { error_event_at: 5 }]]) {
    test(`continuation (${name}): one stream, A's words then B's, [DONE], the prefix is what the client got`, T, async () => {
      a.control(knob);
      const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont', USER, { stream: true }));
      assert.equal(r.status, 200);
      assert.equal(r.end, 'complete');
      assert.equal(r.events.at(-1).data, '[DONE]');
      assert.deepEqual(errorEvents(r.events), [], 'no error event');
      assert.match(r.raw, /\n: pendulum: the stream from ma broke \([^)]*\) after 14 bytes of answer; mb continues it\n/);
      const text = textOf(r.events);
      const fromA = 'mock reply to:';
      assert.equal(text, fromA + FULL, 'A\'s words, then B\'s continuation');
      assert.equal(r.events.filter((e) => e.json?.choices?.[0]?.delta?.role).length, 1, 'one role chunk');
      assert.equal(r.events.filter((e) => e.json?.choices?.[0]?.finish_reason).length, 1, 'one finish');
      const [up] = chats(b);
      const last = up.body.messages.at(-1);
      assert.equal(last.role, 'assistant');
      assert.equal(typeof last.content === 'string' ? last.content : last.content.map((p) => p.text).join(''), fromA);
      assert.deepEqual(up.body.messages.slice(0, -1), [{ role: 'user', content: USER }]);
    });
  }

  test('continuation: the openai SDK accumulates one message, no error', T, async () => {
    a.control({ cut_after: 3 });
    const final = await oai.chat.completions.stream({ model: 'cont', messages: [{ role: 'user', content: USER }] }).finalChatCompletion();
    assert.equal(final.choices.length, 1);
    assert.equal(final.choices[0].message.content, 'mock reply' + FULL);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(chats(b).at(-1).body.messages.at(-1).content, 'mock reply');
  });

  for (const cut of [0, 1]) {
    test(`continuation after ${cut} events (nothing of the answer sent yet): one role chunk, the SDK accumulates the next target's answer`, T, async () => {
      a.control({ cut_after: cut });
      const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont', USER, { stream: true }));
      assert.equal(r.events.at(-1).data, '[DONE]');
      assert.deepEqual(errorEvents(r.events), []);
      assert.equal(r.events.filter((e) => e.json?.choices?.[0]?.delta?.role).length, 1, 'one role chunk');
      assert.ok(r.events[0].json.choices[0].delta.role, 'the role chunk comes first');
      assert.equal(textOf(r.events), FULL);
      a.control({ cut_after: cut });
      const final = await oai.chat.completions.stream({ model: 'cont', messages: [{ role: 'user', content: USER }] }).finalChatCompletion();
      assert.equal(final.choices[0].message.content, FULL);
      assert.equal(final.choices[0].message.role, 'assistant');
    });
  }

  test('continuation: an Anthropic client gets one valid event sequence', T, async () => {
    a.control({ cut_after: 4 });
    const raw = await streamSSE(`${pd.url}/v1/messages`, { model: 'cont', max_tokens: 64, stream: true,
      messages: [{ role: 'user', content: USER }] }, { headers: { 'anthropic-version': '2023-06-01' } });
    assert.equal(raw.status, 200, raw.raw);
    assertAnthropicStream(raw.events);
    const text = raw.events.filter((e) => e.json?.delta?.type === 'text_delta').map((e) => e.json.delta.text).join('');
    assert.equal(text, 'mock reply to:' + FULL);
    assert.equal(chats(b).at(-1).body.messages.at(-1).content, 'mock reply to:');

    a.control({ cut_after: 4 });
    const m = await anth.messages.stream({ model: 'cont', max_tokens: 64, messages: [{ role: 'user', content: USER }] }).finalMessage();
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].text, 'mock reply to:' + FULL);
    assert.equal(m.stop_reason, 'end_turn');
  });

  test('continuation onto an Anthropic upstream: the prefix is the final assistant turn', T, async () => {
    a.control({ cut_after: 4 });
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont-claude', USER, { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.deepEqual(errorEvents(r.events), []);
    assert.equal(textOf(r.events), 'mock reply to:' + FULL);
    const [up] = claude.requests().filter((e) => e.path === '/v1/messages');
    const last = up.body.messages.at(-1);
    assert.equal(last.role, 'assistant');
    const lastText = typeof last.content === 'string' ? last.content : last.content.map((p) => p.text).join('');
    assert.equal(lastText, 'mock reply to:');
  });

  test('continuation between Anthropic upstreams, Anthropic client: one valid event sequence', T, async () => {
    // message_start, content_block_start, ping, "mock", " reply", " to:" | cut
    claude.control({ cut_after: 6 });
    const raw = await streamSSE(`${pd.url}/v1/messages`, { model: 'claude-chain', max_tokens: 64, stream: true,
      messages: [{ role: 'user', content: USER }] }, { headers: { 'anthropic-version': '2023-06-01' } });
    assert.equal(raw.status, 200, raw.raw);
    assertAnthropicStream(raw.events);
    const text = raw.events.filter((e) => e.json?.delta?.type === 'text_delta').map((e) => e.json.delta.text).join('');
    assert.equal(text, 'mock reply to:' + FULL);
    const [up] = claude2.requests().filter((e) => e.path === '/v1/messages');
    const last = up.body.messages.at(-1);
    assert.equal(last.role, 'assistant');
    assert.equal(typeof last.content === 'string' ? last.content : last.content.map((p) => p.text).join(''), 'mock reply to:');

    claude.control({ error_event_at: 6 });
    const m = await anth.messages.stream({ model: 'claude-chain', max_tokens: 64, messages: [{ role: 'user', content: USER }] }).finalMessage();
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].text, 'mock reply' + FULL);
  });

  test('continuation: the continuing target is retried under its route\'s retry policy', T, async () => {
    a.control({ cut_after: 4 });
    b.control({ status: 500 });
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont-retry', USER, { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.deepEqual(errorEvents(r.events), []);
    assert.equal(textOf(r.events), 'mock reply to:' + FULL);
    assert.equal(chats(b).length, 2);
    for (const e of chats(b)) assert.equal(e.body.messages.at(-1).content, 'mock reply to:');
  });

  test('continuation: not past the attempt budget (max_attempts 1): error event, B never asked', T, async () => {
    a.control({ cut_after: 4 });
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont-one-attempt', USER, { stream: true }));
    assert.equal(r.status, 200);
    assert.ok(!r.raw.includes('[DONE]'));
    assert.equal(errorEvents(r.events).length, 1);
    assert.equal(chats(b).length, 0);
  });

  test('no next target: the cut stream ends with an error event and no [DONE]', T, async () => {
    a.control({ cut_after: 4 });
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('solo', USER, { stream: true }));
    assert.equal(r.status, 200);
    assert.ok(!r.raw.includes('[DONE]'));
    assert.equal(errorEvents(r.events).length, 1);
    assert.ok(r.events.at(-1).json?.error, 'the error event is last');
    assert.equal(chats(b).length, 0);
  });

  test('a stream that already sent a tool call is not continued: error event, B never asked', T, async () => {
    a.control({ cut_after: 4 });
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont', USER, { stream: true, tools }));
    assert.equal(r.status, 200);
    assert.ok(r.events.some((e) => e.json?.choices?.[0]?.delta?.tool_calls), 'the client got part of a tool call');
    assert.ok(!r.raw.includes('[DONE]'));
    assert.equal(errorEvents(r.events).length, 1);
    assert.equal(chats(b).length, 0);
  });

  test('the continuing target fails too: the stream ends with an error event, no [DONE]', T, async () => {
    a.control({ cut_after: 4 });
    b.control({ status: 500 });
    const r = await streamSSE(`${pd.url}${CHAT}`, msg('cont', USER, { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(textOf(r.events), 'mock reply to:');
    assert.ok(!r.raw.includes('[DONE]'));
    assert.equal(errorEvents(r.events).length, 1);
    assert.equal(chats(b).length, 1);
  });
});

// ---- continuation onto llama.cpp: llama-server and the embedded engine -------------------

const skip = llamaSkipReason();

// A pass-through HTTP proxy in front of llama-server that keeps the request bodies, so the test
// sees what the gateway sent to the real server (the server itself keeps no request log).
async function recordingProxy(target) {
  const http = await import('node:http');
  const seen = [];
  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      try { seen.push({ path: req.url, body: JSON.parse(body.toString('utf8')) }); } catch { seen.push({ path: req.url, body: null }); }
      const up = http.request(`${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });
  // an idle keep-alive connection closed under curl's feet makes it resend the request
  server.keepAliveTimeout = 120000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

describe('resilience: a broken stream continued by llama-server and by the embedded engine', { skip: skip ?? false }, () => {
  let a, llama, proxy, pd;
  before(async () => {
    a = await startMock({ port: 0 });
    llama = await startLlama();
    proxy = await recordingProxy(llama.url);
    pd = await startPendulum({
      workers: 1,
      upstream: { connect_ms: 2000, ttfb_ms: 30000, idle_ms: 15000, total_ms: 60000 },
      providers: [
        { name: 'pa', kind: 'openai', base_url: `${a.url}/v1`, api_key: 'k' },
        { name: 'server', kind: 'openai', base_url: `${proxy.url}/v1`, local: true, health_check: { enabled: false } },
        { name: 'engine', kind: 'llama', model_path: process.env.TINY_MODEL, ctx_size: 2048, parallel: 1, threads: 1 },
      ],
      models: [
        { name: 'ma', provider: 'pa', upstream_model: 'gpt-4o' },
        { name: 'tiny-local', provider: 'server' },
        { name: 'tiny', provider: 'engine' },
      ],
      extra: `routes:
  - { name: to-server, policy: fallback, targets: [ma, tiny-local] }
  - { name: to-engine, policy: fallback, targets: [ma, tiny] }`,
    });
    await waitFor(async () => (await request(`${pd.url}/readyz`)).status === 200, { timeoutMs: 60000, what: 'model loaded' });
  }, { timeout: 120000 });
  after(async () => {
    try {
      if (pd) await pd.stop();
    } finally {
      if (llama) await llama.stop();
      if (proxy) await proxy.close();
      if (a) await a.close();
    }
  }, { timeout: 20000 });
  beforeEach(() => { a.reset(); proxy.seen.length = 0; });

  for (const [route, target] of [['to-server', 'tiny-local'], ['to-engine', 'tiny']]) {
    test(`continuation onto ${target}: A's words, then a non-empty continuation, [DONE]`, { timeout: 60000 }, async () => {
      a.control({ cut_after: 4 });
      const r = await streamSSE(`${pd.url}${CHAT}`, msg(route, 'Tell me a story', { stream: true, max_tokens: 8, temperature: 0 }),
        { timeoutMs: 50000 });
      assert.equal(r.status, 200);
      assert.equal(r.end, 'complete');
      assert.deepEqual(errorEvents(r.events), [], 'no error event');
      assert.equal(r.events.at(-1).data, '[DONE]');
      assert.ok(r.raw.includes(`; ${target} continues it\n`), 'the continuation comment');
      const text = textOf(r.events);
      assert.ok(text.startsWith('mock reply to:'), text);
      assert.ok(text.length > 'mock reply to:'.length, `a continuation: ${JSON.stringify(text)}`);
      // greedy: the continuation is what the target answers to the same conversation ending
      // with the text the client had as an assistant turn, asked directly
      const direct = await streamSSE(`${pd.url}${CHAT}`, { model: target, stream: true, max_tokens: 8, temperature: 0,
        messages: [{ role: 'user', content: 'Tell me a story' }, { role: 'assistant', content: 'mock reply to:' }] }, { timeoutMs: 50000 });
      assert.equal(direct.events.at(-1).data, '[DONE]');
      assert.equal(text.slice('mock reply to:'.length), textOf(direct.events), 'the continuation continued the prefix');
      // ... which is not what it answers without that turn (else the equality above proves nothing)
      const fresh = await streamSSE(`${pd.url}${CHAT}`, { model: target, stream: true, max_tokens: 8, temperature: 0,
        messages: [{ role: 'user', content: 'Tell me a story' }] }, { timeoutMs: 50000 });
      assert.notEqual(textOf(fresh.events), textOf(direct.events));
      if (target === 'tiny-local') {
        const sent = proxy.seen.filter((e) => e.path.endsWith('/chat/completions'));
        assert.ok(sent.length >= 1); // the continuation came first (then the direct requests)
        const last = sent[0].body.messages.at(-1);
        assert.equal(last.role, 'assistant');
        assert.equal(last.content, 'mock reply to:', 'llama-server was asked to continue what the client has');
      }
    });
  }
});
