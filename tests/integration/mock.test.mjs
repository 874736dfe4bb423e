// The mock upstream checked on its own with the official openai SDK: proves the mock speaks the
// real wire format, independent of Pendulum, so the other suites can trust it.

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startMock } from '../mock/openai-mock.mjs';
import {
  request, postJSON, streamSSE, mockControl, mockReset, mockRequests, waitFor, sleep,
} from './lib/http.mjs';

const MOCK_PATH = fileURLToPath(new URL('../mock/openai-mock.mjs', import.meta.url));
const T = { timeout: 15000 };

const WEATHER_TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'time in a zone',
    parameters: { type: 'object', properties: { zone: { type: 'string' }, utc: { type: 'boolean' } } } } },
];

describe('openai mock, through the official SDK', () => {
  let mock;
  let client;
  before(async () => {
    mock = await startMock({ port: 0, apiKey: 'mock-key' });
    client = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'mock-key', maxRetries: 0, timeout: 10000 });
  });
  after(async () => { await mock.close(); });
  beforeEach(async () => { await mockReset(mock.url); });

  test('non-streaming chat.completion', T, async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello world' }],
    });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, 'gpt-4o');
    assert.equal(typeof r.created, 'number');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'mock reply to: hello world');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.completion_tokens, 5);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    const log = await mockRequests(mock.url);
    assert.equal(log.length, 1);
    assert.equal(log[0].headers.authorization, 'Bearer mock-key');
    assert.equal(log[0].body.messages[1].content, 'hello world');
    assert.equal(log[0].aborted, false);
    assert.ok(log[0].finished_at >= log[0].received_at);
  });

  test('streaming with include_usage: chunk shapes, ids, usage chunk, [DONE]', T, async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'one two three' }],
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length >= 4);
    const ids = new Set(chunks.map((c) => c.id));
    const created = new Set(chunks.map((c) => c.created));
    assert.equal(ids.size, 1, 'same id on every chunk');
    assert.equal(created.size, 1, 'same created on every chunk');
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'gpt-4o-mini');
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, 6);
    const finish = chunks.at(-2);
    assert.deepEqual(finish.choices[0].delta, {});
    assert.equal(finish.choices[0].finish_reason, 'stop');
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'usage: null on ordinary chunks');
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    assert.equal(text, 'mock reply to: one two three');
  });

  test('stream helper finalChatCompletion equals the non-streaming answer', T, async () => {
    const params = { model: 'gpt-4o', messages: [{ role: 'user', content: 'compare me please' }] };
    const plain = await client.chat.completions.create(params);
    const runner = client.chat.completions.stream({ ...params, stream_options: { include_usage: true } });
    const deltas = [];
    runner.on('content', (d) => deltas.push(d));
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, plain.choices[0].message.content);
    assert.equal(deltas.join(''), plain.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.deepEqual(final.usage, plain.usage);
  });

  test('no usage key on chunks without stream_options', T, async () => {
    const r = await streamSSE(`${mock.url}/v1/chat/completions`,
      { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { authorization: 'Bearer mock-key' } });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.equal(r.events.filter((e) => e.data === '[DONE]').length, 1);
    for (const e of r.events.slice(0, -1)) assert.ok(!('usage' in e.json), 'no usage field');
    assert.ok(r.raw.endsWith('data: [DONE]\n\n'));
    assert.ok(!/^event:/m.test(r.raw), 'no event: lines');
  });

  test('parallel tool calls: streamed fragments accumulate to the non-streaming result', T, async () => {
    const params = { model: 'gpt-4o', tools: WEATHER_TOOLS, messages: [{ role: 'user', content: 'weather and time in Paris' }] };
    const plain = await client.chat.completions.create(params);
    assert.equal(plain.choices[0].finish_reason, 'tool_calls');
    assert.equal(plain.choices[0].message.content, null);
    const calls = plain.choices[0].message.tool_calls;
    assert.equal(calls.length, 2);
    assert.deepEqual(calls.map((c) => c.function.name), ['get_weather', 'get_time']);
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'mock-city', days: 7 });

    const final = await client.chat.completions.stream(params).finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    const streamed = final.choices[0].message.tool_calls.map((c) => ({ id: c.id, type: c.type,
      function: { name: c.function.name, arguments: c.function.arguments } }));
    assert.deepEqual(streamed, calls);

    // by hand: fragments per index, the first carries id/type/name and arguments ""
    const stream = await client.chat.completions.create({ ...params, stream: true });
    const acc = [];
    let fragments = 0;
    for await (const c of stream) {
      for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
        fragments++;
        if (!acc[tc.index]) {
          assert.ok(tc.id && tc.type === 'function' && tc.function.name, 'first fragment has id, type, name');
          assert.equal(tc.function.arguments, '');
          acc[tc.index] = { id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: '' } };
        } else {
          assert.equal(tc.id, undefined);
          acc[tc.index].function.arguments += tc.function.arguments;
        }
      }
    }
    assert.ok(fragments > 4, 'arguments arrive in several fragments');
    assert.deepEqual(acc, calls);
  });

  test('parallel_tool_calls:false and a named tool_choice give one call', T, async () => {
    const one = await client.chat.completions.create({ model: 'gpt-4o', tools: WEATHER_TOOLS,
      parallel_tool_calls: false, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(one.choices[0].message.tool_calls.map((c) => c.function.name), ['get_weather']);
    const named = await client.chat.completions.create({ model: 'gpt-4o', tools: WEATHER_TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_time' } }, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(named.choices[0].message.tool_calls.map((c) => c.function.name), ['get_time']);
    const none = await client.chat.completions.create({ model: 'gpt-4o', tools: WEATHER_TOOLS,
      tool_choice: 'none', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(none.choices[0].message.content, 'mock reply to: x');
  });

  test('max_tokens cuts the reply with finish_reason length', T, async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', max_tokens: 3,
      messages: [{ role: 'user', content: 'a b c d e' }] });
    assert.equal(r.choices[0].message.content, 'mock reply to:');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 3);
    const s = await client.chat.completions.create({ model: 'gpt-4o', max_completion_tokens: 2, stream: true,
      stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'a b c d e' }] });
    let text = '';
    let reason = null;
    let usage = null;
    for await (const c of s) {
      text += c.choices[0]?.delta?.content ?? '';
      reason = c.choices[0]?.finish_reason ?? reason;
      usage = c.usage ?? usage;
    }
    assert.equal(text, 'mock reply');
    assert.equal(reason, 'length');
    assert.equal(usage.completion_tokens, 2);
  });

  test('n choices, logprobs and the chunks knob', T, async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', n: 2, logprobs: true, top_logprobs: 2,
      messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    assert.equal(r.choices[0].logprobs.content.length, 4);
    assert.equal(r.choices[0].logprobs.content[0].top_logprobs.length, 2);
    await mockControl(mock.url, { chunks: 9 });
    const s = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let contentChunks = 0;
    for await (const c of s) if (c.choices[0]?.delta?.content) contentChunks++;
    assert.equal(contentChunks, 9);
  });

  test('GET /v1/models in list shape', T, async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    assert.ok(ids.includes('gpt-4o'));
  });

  test('wrong or missing API key: 401 -> AuthenticationError', T, async () => {
    const bad = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
    const r = await postJSON(`${mock.url}/v1/chat/completions`, { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
  });

  test('status knob: 429 with retry-after -> RateLimitError, applied to `count` requests', T, async () => {
    const err = { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' };
    await mockControl(mock.url, { count: 2, status: 429, error: err, headers: { 'retry-after': '7' } });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
        (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '7' && e.message.includes('slow down'));
    }
    const ok = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(ok.choices[0].message.content, 'mock reply to: x');
    await mockControl(mock.url, { status: 500 });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 500);
  });

  test('cut_after: the SDK throws while iterating, no [DONE]', T, async () => {
    await mockControl(mock.url, { cut_after: 3 });
    const s = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a b c d e f' }] });
    const got = [];
    await assert.rejects((async () => { for await (const c of s) got.push(c); })());
    assert.equal(got.length, 3);
    const log = await mockRequests(mock.url);
    assert.equal(log[0].cut, true);
    assert.equal(log[0].aborted, false);
  });

  test('cut_after on a non-streaming answer: the body stops short, the SDK fails', T, async () => {
    await mockControl(mock.url, { cut_after: 20 });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }));
    await mockControl(mock.url, { cut_after: 0 });
    const s = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects((async () => { for await (const c of s) assert.fail(`unexpected chunk ${JSON.stringify(c)}`); })());
    const log = await mockRequests(mock.url);
    assert.deepEqual(log.map((e) => e.cut), [true, true]);
  });

  test('malformed_at: a non-JSON data payload makes the SDK throw', T, async () => {
    await mockControl(mock.url, { malformed_at: 2 });
    const s = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a b' }] });
    const got = [];
    await assert.rejects((async () => { for await (const c of s) got.push(c); })(), SyntaxError);
    assert.equal(got.length, 1);
  });

  test('error_event_at: data: {"error":...} makes the SDK throw APIError', T, async () => {
    const error = { message: 'upstream exploded', type: 'server_error', param: null, code: null };
    await mockControl(mock.url, { error_event_at: 3, error });
    const s = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a b c d' }] });
    const got = [];
    await assert.rejects((async () => { for await (const c of s) got.push(c); })(),
      (e) => e instanceof OpenAI.APIError && e.message.includes('upstream exploded'));
    assert.equal(got.length, 2);
    const raw = await (async () => {
      await mockControl(mock.url, { error_event_at: 1 });
      return streamSSE(`${mock.url}/v1/chat/completions`, { model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] },
        { headers: { authorization: 'Bearer mock-key' } });
    })();
    assert.equal(raw.end, 'complete');
    assert.deepEqual(raw.events.map((e) => e.json), [{ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }]);
  });

  test('latency_ms, ttfb_ms and drip_ms shape the timing', T, async () => {
    await mockControl(mock.url, { latency_ms: 300, ttfb_ms: 200, drip_ms: 150, chunks: 3 });
    const r = await streamSSE(`${mock.url}/v1/chat/completions`,
      { model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }, { headers: { authorization: 'Bearer mock-key' } });
    // events: role, 3 content, finish, [DONE]
    assert.equal(r.events.length, 6);
    assert.ok(r.events[0].t >= 480, `first event after latency+ttfb, got ${r.events[0].t}`);
    const gaps = r.events.slice(1).map((e, i) => e.t - r.events[i].t);
    for (const g of gaps) assert.ok(g >= 120, `gap ${g} ms >= drip`);
  });

  test('hang: no answer; a client that gives up shows as aborted with a time', T, async () => {
    await mockControl(mock.url, { hang: true });
    const t0 = Date.now();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] },
      { signal: controller.signal }));
    const e = await waitFor(async () => (await mockRequests(mock.url)).find((x) => x.aborted), { what: 'aborted entry' });
    assert.equal(e.finished_at, null);
    assert.ok(e.aborted_at - t0 >= 250 && e.aborted_at - t0 < 2000, `aborted_at ${e.aborted_at - t0} ms`);
  });

  test('a client closing mid-stream is logged as aborted', T, async () => {
    await mockControl(mock.url, { drip_ms: 100, chunks: 30 });
    const r = await streamSSE(`${mock.url}/v1/chat/completions`,
      { model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] },
      { headers: { authorization: 'Bearer mock-key' }, onEvent: (e, ctx) => { if (e.json?.choices?.[0]?.delta?.content) ctx.abort(); } });
    assert.equal(r.end, 'aborted');
    const e = await waitFor(async () => (await mockRequests(mock.url)).find((x) => x.aborted), { what: 'aborted entry' });
    assert.ok(e.aborted_at - r.closedAt < 300, `abort seen ${e.aborted_at - r.closedAt} ms after the close`);
  });

  test('/__reset clears knobs and log; bad control input is refused', T, async () => {
    await mockControl(mock.url, { status: 500, count: 5 });
    await mockReset(mock.url);
    assert.deepEqual(await mockRequests(mock.url), []);
    const ok = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(ok.choices[0].finish_reason, 'stop');
    const bad = await request(`${mock.url}/__control`, { method: 'POST', body: '{nope' });
    assert.equal(bad.status, 400);
  });

  test('invalid requests get OpenAI-shaped 400/404', T, async () => {
    const h = { authorization: 'Bearer mock-key' };
    const r1 = await request(`${mock.url}/v1/chat/completions`, { method: 'POST', headers: h, body: '{"model":' });
    assert.equal(r1.status, 400);
    assert.equal(r1.json.error.type, 'invalid_request_error');
    const r2 = await postJSON(`${mock.url}/v1/chat/completions`, { model: 'gpt-4o' }, { headers: h });
    assert.equal(r2.status, 400);
    assert.equal(r2.json.error.param, 'messages');
    const r3 = await request(`${mock.url}/v1/nothing`, { headers: h });
    assert.equal(r3.status, 404);
  });
});

test('the log is capped', T, async () => {
  const mock = await startMock({ logCap: 10 });
  try {
    for (let i = 0; i < 25; i++) {
      await postJSON(`${mock.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: `n${i}` }] });
    }
    const log = await mockRequests(mock.url);
    assert.ok(log.length <= 10 && log.length >= 5, `log length ${log.length}`);
    assert.equal(log.at(-1).body.messages[0].content, 'n24');
  } finally {
    await mock.close();
  }
});

test('close() ends a hanging request and returns promptly', T, async () => {
  const mock = await startMock();
  await mockControl(mock.url, { hang: true, latency_ms: 60000 });
  const pending = request(`${mock.url}/v1/chat/completions`, { method: 'POST', body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } })
    .then(() => 'answered', () => 'failed');
  await sleep(100);
  const t0 = Date.now();
  await mock.close();
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(await pending, 'failed');
});

test('CLI: --port prints "listening PORT", serves, exits 0 on SIGTERM', T, async () => {
  const child = spawn(process.execPath, [MOCK_PATH, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    const m = await waitFor(() => /^listening (\d+)\n/.exec(out), { what: 'listening line' });
    const port = Number(m[1]);
    const r = await postJSON(`http://127.0.0.1:${port}/v1/chat/completions`, { model: 'cli', messages: [{ role: 'user', content: 'ping' }] });
    assert.equal(r.json.choices[0].message.content, 'mock reply to: ping');
    const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
    child.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, sig: null });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
