// Lifecycle: the per-request log line (and what it must never contain), graceful shutdown on
// SIGTERM with a stream in flight, and slow clients that must be dropped without hurting others.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { request, postJSON, streamSSE, tryConnect, mockControl, waitFor, sleep } from './lib/http.mjs';
import { useGateway, testCleanExit, chat, contentOf } from './lib/gateway.mjs';
import { startPendulum, mockProviders, MOCK_MODELS } from './lib/pendulum.mjs';
import { startMock } from '../mock/openai-mock.mjs';

const hex = () => randomBytes(8).toString('hex');
const SECRET = `sk-proj-PROMPTSECRET${hex()}`;
const GATEWAY_KEY = `gw-live-${hex()}`;
const UPSTREAM_KEY = `sk-upstream-${hex()}`;
const WRONG_KEY = `gw-wrong-${hex()}`;

// Neither the prompt, the reply, nor any key may appear anywhere in pendulum's output.
function assertNoSecrets(pd) {
  const everything = pd.stderrText + pd.stdoutText;
  for (const [what, s] of [['the prompt secret', SECRET], ['the gateway key', GATEWAY_KEY],
    ['the upstream key', UPSTREAM_KEY], ['the wrong client key', WRONG_KEY], ['the reply text', 'mock reply to']]) {
    assert.ok(!everything.includes(s), `${what} appears in pendulum's output`);
  }
}

describe('request log', () => {
  const g = useGateway({ apiKeys: [GATEWAY_KEY], upstreamKey: UPSTREAM_KEY });
  const auth = { authorization: `Bearer ${GATEWAY_KEY}` };

  test('one JSON line per request with id, model, provider, status, total_ms; no prompt, no key', { timeout: 15000 }, async () => {
    const done = [];
    const a = await postJSON(`${g.url}/v1/chat/completions`, chat(`my password is ${SECRET}`), { headers: auth });
    assert.equal(a.status, 200, a.text);
    done.push({ r: a, status: 200, model: 'gpt-4o', provider: 'mock' });

    const b = await streamSSE(`${g.url}/v1/chat/completions`, chat(`stream ${SECRET}`, { stream: true }), { headers: auth });
    assert.equal(b.events.at(-1).data, '[DONE]');
    done.push({ r: b, status: 200, model: 'gpt-4o', provider: 'mock' });

    const c = await postJSON(`${g.url}/v1/chat/completions`, { model: 'renamed', messages: [{ role: 'user', content: SECRET }] }, { headers: auth });
    assert.equal(c.status, 200);
    done.push({ r: c, status: 200, model: 'renamed', provider: 'mock' });

    const d = await postJSON(`${g.url}/v1/chat/completions`, { model: 'nope', messages: [{ role: 'user', content: SECRET }] }, { headers: auth });
    assert.equal(d.status, 404);
    done.push({ r: d, status: 404 });

    await mockControl(g.mockUrl, { status: 429, headers: { 'retry-after': '3' } });
    const e = await postJSON(`${g.url}/v1/chat/completions`, chat(SECRET), { headers: auth });
    assert.equal(e.status, 429);
    done.push({ r: e, status: 429, model: 'gpt-4o', provider: 'mock' });

    const f = await postJSON(`${g.url}/v1/chat/completions`, chat(SECRET), { headers: { authorization: `Bearer ${WRONG_KEY}` } });
    assert.equal(f.status, 401);
    done.push({ r: f, status: 401 });

    const ids = done.map((x) => x.r.headers['x-request-id']);
    for (const id of ids) assert.ok(id, 'x-request-id header');
    await waitFor(() => ids.every((id) => g.pd.requestLogs().some((l) => l.id === id)),
      { timeoutMs: 3000, what: `a stderr JSON line for each of ${ids.join(', ')}; stderr tail:\n${g.pd.tail(20)}` });
    const logs = g.pd.requestLogs();
    for (const x of done) {
      const id = x.r.headers['x-request-id'];
      const lines = logs.filter((l) => l.id === id);
      assert.equal(lines.length, 1, `exactly one line for ${id}`);
      const l = lines[0];
      assert.equal(l.status, x.status, `status in ${JSON.stringify(l)}`);
      assert.equal(typeof l.total_ms, 'number', `total_ms in ${JSON.stringify(l)}`);
      assert.ok(l.total_ms >= 0);
      assert.ok('model' in l && 'provider' in l, `model and provider keys in ${JSON.stringify(l)}`);
      if (x.model) assert.equal(l.model, x.model);
      if (x.provider) assert.equal(l.provider, x.provider);
    }
    assertNoSecrets(g.pd);
  });

  testCleanExit(g, assertNoSecrets); // start-up and shutdown lines included
});

describe('graceful shutdown', () => {
  test('SIGTERM with a slow stream in flight: stream completes with [DONE], new connections refused, exit 0',
    { timeout: 20000 }, async () => {
      const mock = await startMock();
      let pd;
      try {
        pd = await startPendulum({ providers: mockProviders(mock.port), models: MOCK_MODELS });
        await mockControl(mock.url, { drip_ms: 300, chunks: 6 });
        let sigAt = 0;
        const streamP = streamSSE(`${pd.url}/v1/chat/completions`, chat('graceful', { stream: true }), {
          timeoutMs: 8000,
          onEvent: (e) => {
            if (!sigAt && e.json?.choices?.[0]?.delta?.content) {
              sigAt = Date.now();
              pd.proc.kill('SIGTERM');
            }
          },
        });
        await waitFor(() => sigAt, { timeoutMs: 5000, what: 'the first content chunk' });
        const refusedAt = await waitFor(async () => ((await tryConnect(pd.port, { timeoutMs: 300 })) === 'refused' ? Date.now() : 0),
          { timeoutMs: 1500, intervalMs: 50, what: 'new connections to be refused after SIGTERM' });
        const r = await streamP;
        const streamEnd = Date.now();
        assert.ok(refusedAt < streamEnd, 'the listener closed while the stream was still running');
        assert.equal(r.status, 200);
        assert.equal(r.end, 'complete');
        assert.equal(r.events.at(-1).data, '[DONE]', 'the in-flight stream completed');
        assert.equal(contentOf(r.events), 'mock reply to: graceful w4 w5');
        const exit = await Promise.race([pd.exited, sleep(5000).then(() => null)]);
        assert.ok(exit, `exited within 5 s of the stream's end; stderr tail:\n${pd.tail()}`);
        assert.deepEqual(exit, { code: 0, signal: null });
        pd.checkClean();
      } finally {
        try {
          if (pd) await pd.stop();
        } finally {
          await mock.close();
        }
      }
    });
});

// Writes `text` one byte per `everyMs` and records when the server closes the connection.
function slowClient(port, text, { everyMs = 1000, maxMs = 9000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let i = 0;
    let got = '';
    const sock = net.connect({ port, host: '127.0.0.1' });
    let timer;
    const finish = (closed) => {
      clearTimeout(timer);
      clearTimeout(limit);
      sock.destroy();
      resolve({ closed, ms: Date.now() - t0, got, sent: i });
    };
    const limit = setTimeout(() => finish(false), maxMs);
    const drip = () => {
      if (sock.destroyed || i >= text.length) return;
      sock.write(text[i++]);
      timer = setTimeout(drip, everyMs);
    };
    sock.on('connect', drip);
    sock.on('data', (c) => { got += c.toString('latin1'); });
    sock.on('close', () => finish(true));
    sock.on('error', () => {});
  });
}

describe('slow clients', () => {
  const g = useGateway();

  test('a client sending one byte a second is dropped after read_timeout_ms; others are served meanwhile',
    { timeout: 20000 }, async () => {
      const port = Number(new URL(g.url).port);
      const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n';
      const slow = [slowClient(port, head), slowClient(port, head), slowClient(port, 'GET /healthz HTTP/1.1\r\n\r\n')];
      await sleep(300);
      for (let i = 0; i < 6; i++) {
        const t0 = Date.now();
        const r = await postJSON(`${g.url}/v1/chat/completions`, chat(`meanwhile ${i}`));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, `mock reply to: meanwhile ${i}`);
        assert.ok(Date.now() - t0 < 1500, `request ${i} took ${Date.now() - t0} ms`);
        await sleep(200);
      }
      for (const s of await Promise.all(slow)) {
        assert.ok(s.closed, `slow client still connected after ${s.ms} ms (${s.sent} bytes sent)`);
        assert.ok(s.ms >= 1500 && s.ms <= 4500, `slow client dropped after ${s.ms} ms (read_timeout_ms 2000)`);
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(s.got);
        if (status) assert.ok(Number(status[1]) >= 400, `answer to a slow client: ${s.got.slice(0, 80)}`);
      }
      const h = await request(`${g.url}/healthz`);
      assert.equal(h.status, 200);
    });

  testCleanExit(g);
});
