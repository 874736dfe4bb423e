// The proxy path: what pendulum sends upstream and what it relays back, for plain requests,
// streams, /v1/models, the health endpoints, keep-alive and concurrency.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request, postJSON, streamSSE, mockChatRequests, mockControl } from './lib/http.mjs';
import { useGateway, testCleanExit, chat, TOOLS, sansId, contentOf } from './lib/gateway.mjs';

const T = { timeout: 15000 };

// Every field a client may send, with awkward values; pendulum must pass all of it through.
const EVERY_FIELD = {
  model: 'renamed',
  messages: [
    { role: 'developer', content: 'You are terse.' },
    { role: 'system', content: [{ type: 'text', text: 'System as parts.' }] },
    { role: 'user', name: 'ann', content: [
      { type: 'text', text: 'héllo 🌍 "quoted" \\ back\nslash\ttab \u2028 end' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } },
    ] },
    { role: 'assistant', content: null, tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    { role: 'user', content: 'thanks' },
  ],
  tools: TOOLS,
  tool_choice: 'auto',
  parallel_tool_calls: true,
  response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true,
    schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false } } },
  logprobs: true,
  top_logprobs: 3,
  n: 2,
  seed: 12345,
  temperature: 0.7,
  top_p: 0.9,
  max_completion_tokens: 50,
  max_tokens: 60,
  stop: ['END', 'STOP'],
  presence_penalty: -0.5,
  frequency_penalty: 0.25,
  logit_bias: { 50256: -100 },
  user: 'user-1',
  safety_identifier: 'sid',
  metadata: { k: 'v' },
  store: false,
  service_tier: 'auto',
  reasoning_effort: 'low',
  x_unknown_field: { nested: [1, 2.5, true, false, null, 'str', { deep: { deeper: [] } }, {}] },
  big_int: 9007199254740991,
  tiny_real: 1e-7,
  negative: -42,
};

describe('proxy', () => {
  const g = useGateway();

  test('forwards to <base_url>/chat/completions with the provider key; body intact except model', T, async () => {
    const r = await postJSON(`${g.url}/v1/chat/completions`, EVERY_FIELD,
      { headers: { authorization: 'Bearer client-side-key' } });
    assert.equal(r.status, 200, r.text);
    const seen = await mockChatRequests(g.mockUrl);
    assert.equal(seen.length, 1, 'exactly one upstream request');
    const up = seen[0];
    assert.equal(up.method, 'POST');
    assert.equal(up.path, '/v1/chat/completions');
    assert.equal(up.headers.authorization, 'Bearer upstream-key', 'the provider key, not the client one');
    assert.match(String(up.headers['content-type']), /^application\/json/);
    assert.deepEqual(up.body, { ...EVERY_FIELD, model: 'real-name' });
  });

  test('a model without upstream_model is sent under its own name', T, async () => {
    const r = await postJSON(`${g.url}/v1/chat/completions`, chat('name check'));
    assert.equal(r.status, 200, r.text);
    const [up] = await mockChatRequests(g.mockUrl);
    assert.equal(up.body.model, 'gpt-4o');
  });

  test('non-streaming response relayed as the upstream sent it, with x-request-id', T, async () => {
    const body = chat('hello proxy', { logprobs: true, top_logprobs: 1 });
    const direct = await postJSON(`${g.mockUrl}/v1/chat/completions`, body);
    const r = await postJSON(`${g.url}/v1/chat/completions`, body);
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.ok(r.headers['x-request-id'], 'x-request-id header');
    assert.equal(r.json.choices[0].message.content, 'mock reply to: hello proxy');
    assert.deepEqual(sansId(r.json), sansId(direct.json));
  });

  test('x-pendulum-cost-usd prices the reported usage; unknown models are "unknown", never 0', T, async () => {
    // gpt-4o: $2.50 / $10.00 per million tokens; the mock reports 8 prompt + 5 completion tokens.
    const r = await postJSON(`${g.url}/v1/chat/completions`, chat('hello there'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.prompt_tokens, 8);
    assert.equal(r.json.usage.completion_tokens, 5);
    assert.equal(r.headers['x-pendulum-cost-usd'], (8 * 2.5e-6 + 5 * 10e-6).toFixed(6));
    const u = await postJSON(`${g.url}/v1/chat/completions`, { ...chat('hello there'), model: 'renamed' });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.headers['x-pendulum-cost-usd'], 'unknown', 'real-name has no price');
  });

  test('a stream is sent upstream with include_usage, and the client that did not ask sees no usage', T, async () => {
    const r = await streamSSE(`${g.url}/v1/chat/completions`, chat('usage please', { stream: true }));
    assert.equal(r.end, 'complete');
    const [up] = await mockChatRequests(g.mockUrl);
    assert.equal(up.body.stream_options?.include_usage, true);
    for (const e of r.events.slice(0, -1)) assert.ok(!('usage' in e.json), 'no usage key in chunks');
  });

  test('streaming response relayed chunk for chunk, [DONE] once at the end', T, async () => {
    const body = chat('stream me through', { stream: true, stream_options: { include_usage: true } });
    const direct = await streamSSE(`${g.mockUrl}/v1/chat/completions`, body);
    const r = await streamSSE(`${g.url}/v1/chat/completions`, body);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    assert.ok(r.headers['x-request-id'], 'x-request-id header');
    assert.equal(r.end, 'complete');
    assert.equal(r.events.filter((e) => e.data === '[DONE]').length, 1, '[DONE] exactly once');
    assert.equal(r.events.at(-1).data, '[DONE]', '[DONE] last');
    assert.deepEqual(r.events.map((e) => sansId(e.json ?? e.data)), direct.events.map((e) => sansId(e.json ?? e.data)));
    assert.equal(new Set(r.events.slice(0, -1).map((e) => e.json.id)).size, 1, 'one id on every chunk');
    assert.equal(contentOf(r.events), 'mock reply to: stream me through');
  });

  test('GET /v1/models lists the configured models', T, async () => {
    const r = await request(`${g.url}/v1/models`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.headers['x-request-id'], 'x-request-id header');
    assert.equal(r.json.object, 'list');
    assert.deepEqual(r.json.data.map((m) => m.id).sort(), ['gpt-4o', 'renamed']);
    for (const m of r.json.data) {
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, 'mock');
      assert.ok(Number.isInteger(m.created), 'created is an integer');
    }
  });

  test('GET /healthz and /readyz', T, async () => {
    const h = await request(`${g.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok' });
    assert.ok(h.headers['x-request-id'], 'x-request-id header');
    const rd = await request(`${g.url}/readyz`);
    assert.equal(rd.status, 200);
  });

  test('x-request-id is on every response and differs between requests', T, async () => {
    const rs = [
      await request(`${g.url}/healthz`),
      await request(`${g.url}/v1/models`),
      await postJSON(`${g.url}/v1/chat/completions`, chat('a')),
      await postJSON(`${g.url}/v1/chat/completions`, chat('b')),
      await request(`${g.url}/no/such/path`),
      await postJSON(`${g.url}/v1/chat/completions`, { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    ];
    const ids = rs.map((r) => r.headers['x-request-id']);
    for (const [i, id] of ids.entries()) assert.ok(typeof id === 'string' && id.length > 0, `response ${i} has x-request-id`);
    assert.equal(new Set(ids).size, ids.length, 'ids are distinct');
  });

  test('keep-alive: several requests and a stream over one connection', T, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const rs = [];
      rs.push(await request(`${g.url}/healthz`, { agent }));
      rs.push(await request(`${g.url}/v1/models`, { agent }));
      rs.push(await postJSON(`${g.url}/v1/chat/completions`, chat('ka one'), { agent }));
      const s = await streamSSE(`${g.url}/v1/chat/completions`, chat('ka two', { stream: true }), { agent });
      assert.equal(s.end, 'complete');
      assert.equal(s.events.at(-1).data, '[DONE]');
      rs.push(await postJSON(`${g.url}/v1/chat/completions`, chat('ka three'), { agent }));
      for (const r of rs) assert.equal(r.status, 200, r.text);
      assert.equal(rs[0].reusedSocket, false);
      for (const r of rs.slice(1)) assert.equal(r.reusedSocket, true, 'socket reused');
      assert.equal(new Set(rs.map((r) => r.localPort)).size, 1, 'one local port for all requests');
      assert.equal(rs.at(-1).json.choices[0].message.content, 'mock reply to: ka three');
    } finally {
      agent.destroy();
    }
  });

  test('a body close to max_body_bytes passes through intact', T, async () => {
    const big = 'x'.repeat(900 * 1024);
    const r = await postJSON(`${g.url}/v1/chat/completions`, chat(big));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const [up] = await mockChatRequests(g.mockUrl);
    assert.equal(up.body.messages[0].content.length, big.length);
    assert.equal(up.body.messages[0].content, big);
  });

  test('concurrent streams do not mix', T, async () => {
    await mockControl(g.mockUrl, { count: 8, drip_ms: 40 });
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      streamSSE(`${g.url}/v1/chat/completions`, chat(`client number ${i}`, { stream: true }), { timeoutMs: 10000 })));
    rs.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.events.at(-1).data, '[DONE]');
      assert.equal(contentOf(r.events), `mock reply to: client number ${i}`);
    });
    assert.equal((await mockChatRequests(g.mockUrl)).length, 8);
  });

  testCleanExit(g);
});
