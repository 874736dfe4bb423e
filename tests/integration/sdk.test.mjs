// The official openai SDK as pendulum's client: what a real application sees.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { mockControl, mockChatRequests } from './lib/http.mjs';
import { useGateway, testCleanExit, TOOLS } from './lib/gateway.mjs';

const T = { timeout: 15000 };
const user = (content) => [{ role: 'user', content }];

// Iterates a stream to its end; returns the chunks, or throws what the SDK threw.
async function drain(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

describe('openai SDK through pendulum', () => {
  const g = useGateway({ apiKeys: ['secret-key'], deadProvider: true });
  let client;
  before(() => {
    client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'secret-key', maxRetries: 0, timeout: 10000 });
  });

  test('non-streaming', T, async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: user('hello sdk') });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.content, 'mock reply to: hello sdk');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.completion_tokens, 5);
    const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }).withResponse();
    assert.ok(response.headers.get('x-request-id'));
    assert.equal(data.choices[0].message.content, 'mock reply to: x');
  });

  test('streaming with include_usage: content and usage arrive', T, async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true,
      stream_options: { include_usage: true }, messages: user('stream sdk now') });
    const chunks = await drain(stream);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'mock reply to: stream sdk now');
    const usage = chunks.at(-1).usage;
    assert.ok(usage, 'the last chunk carries usage');
    assert.equal(usage.completion_tokens, 6);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });

  test('stream helper: finalChatCompletion equals the non-streaming result', T, async () => {
    const params = { model: 'renamed', messages: user('helper check') };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
    assert.equal(final.choices[0].message.content, plain.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.deepEqual(final.usage, plain.usage);
    const ups = await mockChatRequests(g.mockUrl);
    assert.deepEqual(ups.map((u) => u.body.model), ['real-name', 'real-name']);
  });

  test('tool calls: the stream accumulator equals the non-streaming result', T, async () => {
    const params = { model: 'gpt-4o', tools: TOOLS, messages: user('weather and time in Oslo') };
    const plain = await client.chat.completions.create(params);
    const expected = plain.choices[0].message.tool_calls;
    assert.equal(expected.length, 2);
    assert.equal(plain.choices[0].finish_reason, 'tool_calls');
    const runner = client.chat.completions.stream(params);
    const argDeltas = [];
    runner.on('tool_calls.function.arguments.delta', (e) => argDeltas.push(e.arguments_delta));
    const final = await runner.finalChatCompletion();
    const got = final.choices[0].message.tool_calls.map((c) => ({ id: c.id, type: c.type,
      function: { name: c.function.name, arguments: c.function.arguments } }));
    assert.deepEqual(got, expected);
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.ok(argDeltas.length >= 4, `${argDeltas.length} argument deltas`);
    const one = await client.chat.completions.create({ ...params, parallel_tool_calls: false });
    assert.equal(one.choices[0].message.tool_calls.length, 1);
  });

  test('models.list', T, async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['dead-model', 'gpt-4o', 'renamed']);
  });

  test('error classes: NotFound, BadRequest, Authentication', T, async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: user('x') }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o' }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.type === 'invalid_request_error');
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: 'not an array' }),
      (e) => e instanceof OpenAI.BadRequestError);
    const wrong = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: 'gpt-4o', messages: user('x') }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
    await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  });

  test('upstream 429 with retry-after 7: RateLimitError carrying the header', T, async () => {
    const error = { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' };
    await mockControl(g.mockUrl, { count: 3, status: 429, error, headers: { 'retry-after': '7' } });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }), (e) => {
      assert.ok(e instanceof OpenAI.RateLimitError, `got ${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 429);
      assert.equal(e.headers.get('retry-after'), '7');
      assert.equal(e.code, 'rate_limit_exceeded');
      assert.match(e.message, /Rate limit reached for requests/);
      return true;
    });
  });

  test('upstream 500, unreachable 502, timeout 504: InternalServerError', T, async () => {
    await mockControl(g.mockUrl, { count: 3, status: 500 });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 500);
    g.mock.reset();
    await assert.rejects(client.chat.completions.create({ model: 'dead-model', messages: user('x') }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 502 && e.code === 'upstream_unreachable');
    await mockControl(g.mockUrl, { hang: true });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: user('x'), stream: true }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 504 && e.code === 'upstream_timeout');
  });

  const broken = [
    ['upstream cut', { cut_after: 3, drip_ms: 20 }],
    ['malformed chunk', { malformed_at: 3 }],
    ['idle gap over idle_ms', { drip_ms: 2500, chunks: 2 }],
    ['upstream error event', { error_event_at: 3, error: { message: 'boom upstream', type: 'server_error', param: null, code: null } }],
  ];
  for (const [name, knob] of broken) {
    test(`broken stream (${name}): the SDK throws APIError while iterating`, T, async () => {
      await mockControl(g.mockUrl, knob);
      const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: user('one two three four') });
      const seen = [];
      await assert.rejects((async () => { for await (const c of stream) seen.push(c); })(), (e) => {
        assert.ok(e instanceof OpenAI.APIError, `expected APIError from a data: {"error"} event, got ${e.constructor.name}: ${e.message}`);
        if (knob.error) assert.match(e.message, /boom upstream/);
        return true;
      });
      assert.ok(seen.length >= 1, 'chunks before the break were delivered');
    });
  }

  test('the stream helper rejects too on a broken stream', T, async () => {
    await mockControl(g.mockUrl, { cut_after: 2 });
    await assert.rejects(client.chat.completions.stream({ model: 'gpt-4o', messages: user('a b c') }).finalChatCompletion(),
      (e) => e instanceof OpenAI.APIError);
  });

  testCleanExit(g);
});
