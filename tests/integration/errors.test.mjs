// Errors: pendulum's own (routing, validation, limits, auth) and the upstream's (HTTP errors,
// unreachable, too slow), all OpenAI-shaped; after each test the server must still be serving.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  request, postJSON, streamSSE, rawExchange, rawStatus, mockControl, mockChatRequests, mockRequests,
  assertOpenAIError, waitFor, sleep,
} from './lib/http.mjs';
import { useGateway, testCleanExit, chat } from './lib/gateway.mjs';

const T = { timeout: 15000 };
const port = (url) => Number(new URL(url).port);

describe('errors', () => {
  const g = useGateway({ deadProvider: true });

  test('unknown path: 404 not_found', T, async () => {
    for (const [method, path] of [['GET', '/v1/nope'], ['POST', '/nope'], ['GET', '/'], ['POST', '/v1/chat/completions/extra']]) {
      const r = await request(`${g.url}${path}`, { method, body: method === 'POST' ? chat('x') : undefined });
      assertOpenAIError(assert, r, 404, { code: 'not_found' });
      assert.ok(r.headers['x-request-id'], 'x-request-id header');
    }
    assert.equal((await mockChatRequests(g.mockUrl)).length, 0);
  });

  test('wrong method on a known path: 405 method_not_allowed', T, async () => {
    for (const [method, path] of [['GET', '/v1/chat/completions'], ['POST', '/v1/models'], ['DELETE', '/v1/chat/completions'], ['PUT', '/v1/models']]) {
      const r = await request(`${g.url}${path}`, { method, body: method === 'GET' ? undefined : chat('x') });
      assertOpenAIError(assert, r, 405, { code: 'method_not_allowed' });
    }
  });

  test('unknown model: 404 model_not_found, nothing sent upstream', T, async () => {
    const r = await postJSON(`${g.url}/v1/chat/completions`, { model: 'gpt-99', messages: [{ role: 'user', content: 'x' }] });
    assertOpenAIError(assert, r, 404, { code: 'model_not_found' });
    const s = await postJSON(`${g.url}/v1/chat/completions`, { model: 'gpt-99', stream: true, messages: [{ role: 'user', content: 'x' }] });
    assertOpenAIError(assert, s, 404, { code: 'model_not_found' });
    assert.equal((await mockRequests(g.mockUrl)).length, 0);
  });

  test('malformed JSON, wrong types, missing fields: 400 invalid_request_error', T, async () => {
    const bodies = [
      '{',
      '',
      'null',
      '[]',
      '"just a string"',
      '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]} trailing',
      '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],}',
      JSON.stringify({ model: 'gpt-4o' }),
      JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }),
      JSON.stringify({ model: 5, messages: [{ role: 'user', content: 'x' }] }),
      JSON.stringify({ model: 'gpt-4o', messages: 'hi' }),
      JSON.stringify({ model: 'gpt-4o', messages: { role: 'user', content: 'x' } }),
      JSON.stringify({ model: 'gpt-4o', messages: [] }),
    ];
    for (const body of bodies) {
      const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 400, `body ${JSON.stringify(body)} -> ${r.status} ${r.text.slice(0, 200)}`);
      assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
    }
  });

  test('invalid UTF-8 in the body: 400, nothing sent upstream', T, async () => {
    const bad = [[0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]];
    for (const bytes of bad) {
      const body = Buffer.concat([Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"bad '),
        Buffer.from(bytes), Buffer.from(' end"}]}')]);
      const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      assertOpenAIError(assert, r, 400, { type: 'invalid_request_error' });
    }
    assert.equal((await mockChatRequests(g.mockUrl)).length, 0);
  });

  test('declared body over max_body_bytes: 413 without waiting for the body', T, async () => {
    const head = ['POST /v1/chat/completions HTTP/1.1', `Host: 127.0.0.1:${port(g.url)}`, 'Content-Type: application/json',
      `Content-Length: ${2 * 1024 * 1024}`, '', ''].join('\r\n');
    const r = await rawExchange(port(g.url), head + '{"model":"gpt-4o","messages":[', { timeoutMs: 1500 });
    assert.equal(rawStatus(r.text), 413, `got: ${r.text.slice(0, 200)}`);
    const bodyStart = r.text.indexOf('\r\n\r\n');
    const json = JSON.parse(r.text.slice(bodyStart + 4).replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, ''));
    assert.equal(typeof json.error.message, 'string');
    assert.equal((await mockChatRequests(g.mockUrl)).length, 0);
  });

  test('chunked body over max_body_bytes is refused, not forwarded', T, async () => {
    const res = await new Promise((resolve) => {
      const req = http.request(`${g.url}/v1/chat/completions`, { method: 'POST', agent: false,
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
      let done = false;
      const finish = (v) => { if (!done) { done = true; clearTimeout(timer); resolve(v); } };
      const timer = setTimeout(() => { req.destroy(); finish({ status: 0, timeout: true }); }, 5000);
      req.on('response', (r) => { r.resume(); r.on('end', () => finish({ status: r.statusCode })); r.on('error', () => finish({ status: r.statusCode })); });
      req.on('error', (e) => finish({ status: 0, error: e.code }));
      const piece = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      req.write('{"model":"gpt-4o","messages":[{"role":"user","content":"');
      const pump = () => {
        if (done || sent > 2 * 1024 * 1024) return;
        sent += piece.length;
        req.write(piece, () => setTimeout(pump, 2));
      };
      pump();
    });
    assert.ok(!res.timeout, 'answered or closed within 5 s');
    assert.ok([413, 411, 0].includes(res.status), `status ${res.status}`);
    assert.equal((await mockChatRequests(g.mockUrl)).length, 0);
  });

  test('more than max_headers headers: 431 or the connection is closed', T, async () => {
    const lines = ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1'];
    for (let i = 0; i < 60; i++) lines.push(`X-Filler-${i}: ${i}`);
    const r = await rawExchange(port(g.url), lines.join('\r\n') + '\r\n\r\n', { timeoutMs: 3000 });
    const status = rawStatus(r.text);
    assert.ok(status === 431 || (status === 0 && r.closed), `status ${status}, closed ${r.closed}: ${r.text.slice(0, 200)}`);
  });

  test('garbage and oversized request heads do not hurt the server', T, async () => {
    const inputs = [
      'GARBAGE\r\n\r\n',
      'GET /healthz HTTP/9.9\r\n\r\n',
      '\x00\x01\x02\x03\r\n\r\n',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(200 * 1024)}\r\n\r\n`,
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ];
    for (const input of inputs) {
      const r = await rawExchange(port(g.url), input, { timeoutMs: 3000 });
      const status = rawStatus(r.text);
      assert.ok((status >= 400 && status < 500) || status === 505 || (status === 0 && r.closed),
        `input ${JSON.stringify(input.slice(0, 40))}: status ${status} closed ${r.closed}`);
      const h = await request(`${g.url}/healthz`);
      assert.equal(h.status, 200);
    }
  });

  test('upstream HTTP errors pass through with status, body and Retry-After', T, async () => {
    const cases = [
      [400, { message: 'This model\'s maximum context length is 8 tokens.', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' }],
      [401, { message: 'Incorrect API key provided: up***ey.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' }],
      [429, { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' }],
      [500, { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null }],
      [503, { message: 'The engine is currently overloaded.', type: 'server_error', param: null, code: null }],
    ];
    for (const [status, error] of cases) {
      await mockControl(g.mockUrl, { count: 5, status, error, headers: status === 429 ? { 'retry-after': '7' } : {} });
      const r = await postJSON(`${g.url}/v1/chat/completions`, chat('x'));
      assert.equal(r.status, status, `upstream ${status} -> ${r.status} ${r.text.slice(0, 200)}`);
      assert.deepEqual(r.json, { error }, 'the upstream error body');
      assert.ok(r.headers['x-request-id'], 'x-request-id header');
      if (status === 429) assert.equal(r.headers['retry-after'], '7');
      g.mock.reset();
    }
  });

  test('upstream error on a streaming request: the status, not a 200 stream', T, async () => {
    const error = { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' };
    await mockControl(g.mockUrl, { count: 5, status: 429, error, headers: { 'retry-after': '7' } });
    const r = await postJSON(`${g.url}/v1/chat/completions`, chat('x', { stream: true }));
    assert.equal(r.status, 429, r.text.slice(0, 200));
    assert.deepEqual(r.json, { error });
    assert.equal(r.headers['retry-after'], '7');
  });

  test('upstream unreachable: 502 upstream_unreachable', T, async () => {
    const t0 = Date.now();
    const r = await postJSON(`${g.url}/v1/chat/completions`, { model: 'dead-model', messages: [{ role: 'user', content: 'x' }] });
    assertOpenAIError(assert, r, 502, { code: 'upstream_unreachable' });
    assert.ok(Date.now() - t0 < 2500, `answered in ${Date.now() - t0} ms`);
    const s = await postJSON(`${g.url}/v1/chat/completions`, { model: 'dead-model', stream: true, messages: [{ role: 'user', content: 'x' }] });
    assertOpenAIError(assert, s, 502, { code: 'upstream_unreachable' });
  });

  for (const stream of [false, true]) {
    test(`no first byte within ttfb_ms (${stream ? 'streaming' : 'non-streaming'}): 504 upstream_timeout, upstream dropped`, T, async () => {
      await mockControl(g.mockUrl, { hang: true });
      const t0 = Date.now();
      const r = await postJSON(`${g.url}/v1/chat/completions`, chat('x', { stream }));
      const ms = Date.now() - t0;
      assertOpenAIError(assert, r, 504, { code: 'upstream_timeout' });
      assert.ok(ms >= 1500 && ms < 4000, `504 after ${ms} ms (ttfb_ms is 2000)`);
      const answeredAt = Date.now();
      const e = await waitFor(async () => (await mockChatRequests(g.mockUrl)).find((x) => x.aborted),
        { timeoutMs: 2000, what: 'the upstream request to be closed' });
      assert.ok(e.aborted_at - answeredAt < 1000, `upstream closed ${e.aborted_at - answeredAt} ms after the 504`);
    });
  }

  test('the same server answers normally after all of the above', T, async () => {
    await sleep(50);
    const r = await postJSON(`${g.url}/v1/chat/completions`, chat('still alive'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'mock reply to: still alive');
    const s = await streamSSE(`${g.url}/v1/chat/completions`, chat('still streaming', { stream: true }));
    assert.equal(s.events.at(-1).data, '[DONE]');
  });

  testCleanExit(g);
});

describe('gateway auth (api_keys set)', () => {
  const g = useGateway({ apiKeys: ['secret-key'] });

  test('missing or wrong Authorization: 401 authentication_error / invalid_api_key', T, async () => {
    const variants = [{}, { authorization: 'Bearer wrong-key' }, { authorization: 'Bearer ' },
      { authorization: 'Basic c2VjcmV0LWtleTo=' }, { authorization: 'secret-key' }, { authorization: 'Bearer secret-key2' }];
    for (const headers of variants) {
      const r = await postJSON(`${g.url}/v1/chat/completions`, chat('x'), { headers });
      assertOpenAIError(assert, r, 401, { type: 'authentication_error', code: 'invalid_api_key' });
      const m = await request(`${g.url}/v1/models`, { headers });
      assertOpenAIError(assert, m, 401, { type: 'authentication_error', code: 'invalid_api_key' });
    }
    assert.equal((await mockRequests(g.mockUrl)).length, 0, 'nothing reached the upstream');
  });

  test('the right key is accepted and not forwarded upstream', T, async () => {
    const r = await postJSON(`${g.url}/v1/chat/completions`, chat('authorized'), { headers: { authorization: 'Bearer secret-key' } });
    assert.equal(r.status, 200, r.text);
    const m = await request(`${g.url}/v1/models`, { headers: { authorization: 'Bearer secret-key' } });
    assert.equal(m.status, 200);
    const [up] = await mockChatRequests(g.mockUrl);
    assert.equal(up.headers.authorization, 'Bearer upstream-key');
  });

  testCleanExit(g);
});
