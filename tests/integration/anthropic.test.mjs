// The Anthropic Messages API through pendulum, with the official SDKs as clients:
//   A. the Anthropic SDK on POST /v1/messages, OpenAI upstream (the OpenAI mock): translation
//   B. the Anthropic SDK on POST /v1/messages, Anthropic upstream (the Anthropic mock): pass-through
//   C. the OpenAI SDK on POST /v1/chat/completions, Anthropic upstream: translation
// For each: text, streaming (the SDK's stream accumulator must equal the non-streaming answer),
// tools, errors in the client's protocol (status and shape), broken streams; and what the
// upstream was really sent.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startMock as startOpenAIMock } from '../mock/openai-mock.mjs';
import { startMock as startAnthropicMock } from '../mock/anthropic-mock.mjs';
import { startPendulum } from './lib/pendulum.mjs';
import { request, postJSON, streamSSE } from './lib/http.mjs';

const T = { timeout: 15000 };
const GATEWAY_KEY = 'secret-key';
const user = (content) => [{ role: 'user', content }];

const ANTH_TOOLS = [
  { name: 'get_weather', description: 'Weather for a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } },
  { name: 'get_time', description: 'Time in a zone', input_schema: { type: 'object', properties: { zone: { type: 'string' } } } },
];
const OAI_TOOLS = ANTH_TOOLS.map((t) => ({ type: 'function',
  function: { name: t.name, description: t.description, parameters: t.input_schema } }));

// What a stream accumulator must reproduce of a non-streaming Message (ids are per request).
function sansVolatile(m) {
  const { id, parsed_output: _p, ...rest } = m;
  assert.equal(typeof id, 'string');
  const usage = { ...rest.usage };
  delete usage.service_tier;
  return { ...rest, usage };
}

// The parts of a chat completion that streaming must reproduce exactly.
function essence(c) {
  const m = c.choices[0].message;
  return {
    content: m.content ?? null,
    tool_calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, type: t.type, function: { name: t.function.name, arguments: t.function.arguments } })),
    finish_reason: c.choices[0].finish_reason,
    usage: c.usage,
  };
}

async function drain(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

// The requests one mock logged for a path.
const sent = (mock, path) => mock.requests().filter((e) => e.path.split('?')[0] === path);

// Asserts an Anthropic-shaped error body: {"type":"error","error":{"type","message"}}.
function assertAnthropicError(r, status, type, message) {
  assert.equal(r.status, status, `status (body: ${r.text.slice(0, 300)})`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(r.json?.type, 'error', `Anthropic error shape, got: ${r.text.slice(0, 300)}`);
  assert.equal(r.json.error.type, type, 'error.type');
  assert.equal(typeof r.json.error.message, 'string');
  if (message) assert.match(r.json.error.message, message);
}

// Checks a raw Anthropic event stream against the protocol: named events whose name is the
// JSON type, message_start first, blocks 0,1,2... opened one at a time and closed before the
// next, message_delta then message_stop last. Returns the events without pings.
function assertAnthropicStream(events, { complete = true } = {}) {
  const real = events.filter((e) => e.event !== 'ping');
  for (const e of events) {
    assert.ok(e.event, `every event is named: ${e.data}`);
    assert.equal(e.json?.type, e.event, 'the JSON type repeats the event name');
  }
  assert.equal(real[0].event, 'message_start');
  let open = -1;
  let next = 0;
  for (const e of real.slice(1)) {
    if (e.event === 'content_block_start') {
      assert.equal(open, -1, 'no block is open when one starts');
      assert.equal(e.json.index, next++, 'block indices are 0, 1, 2...');
      open = e.json.index;
    } else if (e.event === 'content_block_delta') {
      assert.equal(e.json.index, open, 'deltas belong to the open block');
    } else if (e.event === 'content_block_stop') {
      assert.equal(e.json.index, open);
      open = -1;
    }
  }
  if (complete) {
    assert.deepEqual(real.slice(-2).map((e) => e.event), ['message_delta', 'message_stop']);
    assert.equal(open, -1, 'every block was closed');
  }
  return real;
}

describe('anthropic: SDKs through pendulum, OpenAI and Anthropic upstreams', () => {
  const g = {};
  let anth; // Anthropic SDK -> pendulum
  let oai; // OpenAI SDK -> pendulum
  before(async () => {
    g.oaiMock = await startOpenAIMock({ port: 0 });
    g.anthMock = await startAnthropicMock({ port: 0, apiKey: 'k' });
    g.pd = await startPendulum({
      apiKeys: [GATEWAY_KEY],
      providers: [
        { name: 'oai', kind: 'openai', base_url: `http://127.0.0.1:${g.oaiMock.port}/v1`, api_key: 'upstream-key' },
        { name: 'anth', kind: 'anthropic', base_url: `http://127.0.0.1:${g.anthMock.port}`, api_key: 'k' },
      ],
      models: [
        { name: 'gpt-4o', provider: 'oai' },
        { name: 'claude', provider: 'anth', upstream_model: 'claude-real-name' },
      ],
    });
    anth = new Anthropic({ baseURL: g.pd.url, apiKey: GATEWAY_KEY, maxRetries: 0, timeout: 10000 });
    oai = new OpenAI({ baseURL: `${g.pd.url}/v1`, apiKey: GATEWAY_KEY, maxRetries: 0, timeout: 10000 });
  }, { timeout: 20000 });

  after(async () => {
    try {
      if (g.pd) await g.pd.stop();
    } finally {
      if (g.oaiMock) await g.oaiMock.close();
      if (g.anthMock) await g.anthMock.close();
    }
  }, { timeout: 15000 });

  afterEach(async () => {
    g.oaiMock?.reset();
    g.anthMock?.reset();
    if (!g.pd || g.pd.stopped) return;
    g.pd.checkAlive();
    const h = await request(`${g.pd.url}/healthz`, { timeoutMs: 3000 });
    assert.equal(h.status, 200, 'pendulum still serves GET /healthz');
  }, { timeout: 5000 });

  // ---- A. Anthropic client, OpenAI upstream -------------------------------------------------

  describe('A. Anthropic SDK -> /v1/messages -> OpenAI upstream', () => {
    test('text: a Message, and the upstream got an OpenAI request', T, async () => {
      const m = await anth.messages.create({ model: 'gpt-4o', max_tokens: 256, system: 'Be brief.',
        temperature: 0.5, stop_sequences: ['ZZZ'], metadata: { user_id: 'u-1' },
        messages: user('hello anthropic') });
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.deepEqual(m.content, [{ type: 'text', text: 'mock reply to: hello anthropic' }]);
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.usage.output_tokens, 5);
      const [up] = sent(g.oaiMock, '/v1/chat/completions');
      assert.equal(up.headers.authorization, 'Bearer upstream-key');
      assert.equal(up.body.model, 'gpt-4o');
      assert.deepEqual(up.body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello anthropic' }]);
      assert.equal(up.body.max_completion_tokens, 256);
      assert.equal(up.body.temperature, 0.5);
      assert.deepEqual(up.body.stop, ['ZZZ']);
      assert.equal(up.body.user, 'u-1');
      assert.equal(up.body.max_tokens, undefined, 'no Anthropic field leaks upstream');
      assert.equal(up.body.metadata, undefined);
      // input_tokens is the uncached part: the mock reports no cache, so it is the whole prompt
      const { usage } = await oai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'system', content: 'Be brief.' }, ...user('hello anthropic')] });
      assert.equal(m.usage.input_tokens, usage.prompt_tokens);
      assert.equal(m.usage.cache_read_input_tokens, 0);
    });

    test('streaming: finalMessage() equals the non-streaming Message; the wire is Anthropic\'s', T, async () => {
      const params = { model: 'gpt-4o', max_tokens: 100, messages: user('stream this please') };
      const plain = await anth.messages.create(params);
      const final = await anth.messages.stream(params).finalMessage();
      assert.deepEqual(sansVolatile(final), sansVolatile(plain));
      const texts = [];
      await anth.messages.stream(params).on('text', (t) => texts.push(t)).done();
      assert.ok(texts.length >= 4, `${texts.length} text deltas: streamed, not buffered`);
      assert.equal(texts.join(''), 'mock reply to: stream this please');
      const r = await streamSSE(`${g.pd.url}/v1/messages`, { ...params, stream: true },
        { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/event-stream/);
      const evs = assertAnthropicStream(r.events);
      assert.equal(evs.at(-2).json.delta.stop_reason, 'end_turn');
      assert.equal(evs.at(-2).json.usage.output_tokens, 6);
    });

    test('tools: parallel tool_use blocks from 0, finalMessage equal, inputs are objects', T, async () => {
      const params = { model: 'gpt-4o', max_tokens: 300, tools: ANTH_TOOLS, messages: user('weather and time in Oslo') };
      const plain = await anth.messages.create(params);
      assert.equal(plain.stop_reason, 'tool_use');
      const uses = plain.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 2);
      assert.deepEqual(uses.map((u) => u.name), ['get_weather', 'get_time']);
      assert.deepEqual(uses[0].input, { city: 'mock-city', days: 7 });
      assert.deepEqual(uses[1].input, { zone: 'mock-zone' });
      const [up] = sent(g.oaiMock, '/v1/chat/completions');
      assert.deepEqual(up.body.tools, OAI_TOOLS);
      const runner = anth.messages.stream(params);
      const partials = [];
      runner.on('inputJson', (delta) => partials.push(delta));
      const final = await runner.finalMessage();
      assert.deepEqual(sansVolatile(final), sansVolatile(plain));
      assert.ok(partials.length >= 4, `${partials.length} input_json_delta fragments`);
      const one = await anth.messages.create({ ...params, tool_choice: { type: 'auto', disable_parallel_tool_use: true } });
      assert.equal(one.content.filter((b) => b.type === 'tool_use').length, 1);
      const ups = sent(g.oaiMock, '/v1/chat/completions');
      assert.equal(ups.at(-1).body.parallel_tool_calls, false);
      assert.equal(ups.at(-1).body.tool_choice, 'auto');
    });

    test('tool results: one user turn of tool_result blocks becomes one tool message per call', T, async () => {
      const m = await anth.messages.create({ model: 'gpt-4o', max_tokens: 100, tools: ANTH_TOOLS,
        tool_choice: { type: 'none' },
        messages: [
          { role: 'user', content: 'weather and time?' },
          { role: 'assistant', content: [
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: { city: 'Oslo' } },
            { type: 'tool_use', id: 'toolu_b', name: 'get_time', input: {} }] },
          { role: 'user', content: [
            { type: 'tool_result', tool_use_id: 'toolu_a', content: '3C' },
            { type: 'tool_result', tool_use_id: 'toolu_b', content: [{ type: 'text', text: 'no clock' }], is_error: true },
            { type: 'text', text: 'thanks' }] },
        ] });
      assert.equal(m.stop_reason, 'end_turn');
      const [up] = sent(g.oaiMock, '/v1/chat/completions');
      assert.deepEqual(up.body.messages, [
        { role: 'user', content: 'weather and time?' },
        { role: 'assistant', content: 'Checking.', tool_calls: [
          { id: 'toolu_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          { id: 'toolu_b', type: 'function', function: { name: 'get_time', arguments: '{}' } }] },
        { role: 'tool', content: '3C', tool_call_id: 'toolu_a' },
        { role: 'tool', content: 'Error: no clock', tool_call_id: 'toolu_b' },
        { role: 'user', content: 'thanks' },
      ]);
      assert.equal(up.body.tool_choice, 'none');
    });

    test('max_tokens cuts the answer: stop_reason max_tokens, streamed too', T, async () => {
      const params = { model: 'gpt-4o', max_tokens: 2, messages: user('a long question here') };
      const plain = await anth.messages.create(params);
      assert.equal(plain.stop_reason, 'max_tokens');
      assert.equal(plain.content[0].text, 'mock reply');
      const final = await anth.messages.stream(params).finalMessage();
      assert.deepEqual(sansVolatile(final), sansVolatile(plain));
    });

    test('errors reach the Anthropic SDK in Anthropic\'s shape', T, async () => {
      // invalid requests are refused by pendulum itself, before any upstream
      let r = await postJSON(`${g.pd.url}/v1/messages`, { model: 'gpt-4o', messages: user('x') },
        { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
      assertAnthropicError(r, 400, 'invalid_request_error', /max_tokens: Field required/);
      r = await postJSON(`${g.pd.url}/v1/messages`, { model: 'gpt-4o', max_tokens: 5,
        messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'nope', content: 'x' }] }] },
      { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
      assertAnthropicError(r, 400, 'invalid_request_error', /unexpected `tool_use_id`/);
      r = await postJSON(`${g.pd.url}/v1/messages`, { model: 'no-such-model', max_tokens: 5, messages: user('x') },
        { headers: { 'x-api-key': GATEWAY_KEY } });
      assertAnthropicError(r, 404, 'not_found_error', /no-such-model/);
      r = await postJSON(`${g.pd.url}/v1/messages`, { model: 'gpt-4o', max_tokens: 5, messages: user('x') },
        { headers: { 'x-api-key': 'wrong' } });
      assertAnthropicError(r, 401, 'authentication_error');
      assert.equal(sent(g.oaiMock, '/v1/chat/completions').length, 0, 'none of these reached the upstream');
      await assert.rejects(anth.messages.create({ model: 'gpt-4o', max_tokens: 5, messages: user('') }),
        (e) => e instanceof Anthropic.BadRequestError && e.status === 400 && e.type === 'invalid_request_error');

      // upstream errors: status kept, type Anthropic's, message carried
      g.oaiMock.control({ status: 429, headers: { 'retry-after': '7' },
        error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } });
      await assert.rejects(anth.messages.create({ model: 'gpt-4o', max_tokens: 5, messages: user('x') }), (e) => {
        assert.ok(e instanceof Anthropic.RateLimitError, `got ${e.constructor.name}: ${e.message}`);
        assert.equal(e.type, 'rate_limit_error');
        assert.equal(e.headers.get('retry-after'), '7');
        assert.match(e.message, /Rate limit reached for requests/);
        return true;
      });
      g.oaiMock.control({ status: 500 });
      await assert.rejects(anth.messages.create({ model: 'gpt-4o', max_tokens: 5, messages: user('x') }),
        (e) => e instanceof Anthropic.InternalServerError && e.status === 500 && e.type === 'api_error');
    });

    test('a broken upstream stream ends with an Anthropic error event; the SDK throws', T, async () => {
      for (const knob of [{ cut_after: 3 }, { malformed_at: 3 },
        { error_event_at: 3, error: { message: 'boom upstream', type: 'server_error', param: null, code: null } }]) {
        g.oaiMock.control(knob);
        const seen = [];
        await assert.rejects(anth.messages.stream({ model: 'gpt-4o', max_tokens: 50, messages: user('one two three four') })
          .on('text', (t) => seen.push(t)).finalMessage(), (e) => {
          assert.ok(e instanceof Anthropic.APIError, `${JSON.stringify(knob)}: got ${e.constructor.name}: ${e.message}`);
          if (knob.error) assert.match(e.message, /boom upstream/);
          return true;
        });
        assert.ok(seen.length >= 1, 'text before the break was delivered');
      }
      g.oaiMock.control({ cut_after: 3 });
      const r = await streamSSE(`${g.pd.url}/v1/messages`, { model: 'gpt-4o', max_tokens: 50, stream: true, messages: user('a b c d') },
        { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
      const last = r.events.at(-1);
      assert.equal(last.event, 'error');
      assert.equal(last.json.type, 'error');
      assert.ok(!r.events.some((e) => e.event === 'message_stop'), 'a broken stream never ends as complete');
      assertAnthropicStream(r.events.slice(0, -1), { complete: false });
    });
  });

  // ---- B. Anthropic client, Anthropic upstream (pass-through) -------------------------------

  describe('B. Anthropic SDK -> /v1/messages -> Anthropic upstream', () => {
    test('text: the upstream\'s Message, model renamed, its own fields kept', T, async () => {
      const body = { model: 'claude', max_tokens: 64, temperature: 0.7,
        system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
        messages: user('hello claude'), metadata: { user_id: 'u-2' } };
      const m = await anth.messages.create(body);
      assert.deepEqual(m.content, [{ type: 'text', text: 'mock reply to: hello claude' }]);
      assert.equal(m.model, 'claude-real-name');
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.usage.output_tokens, 5);
      const [up] = sent(g.anthMock, '/v1/messages');
      assert.equal(up.headers['x-api-key'], 'k');
      assert.equal(up.headers['anthropic-version'], '2023-06-01');
      assert.equal(up.headers.authorization, undefined, 'the gateway key is not sent upstream');
      assert.deepEqual(up.body, { ...body, model: 'claude-real-name' }, 'the client\'s body, model replaced');
    });

    test('streaming: events relayed as the upstream sent them (pings included); finalMessage equal', T, async () => {
      const params = { model: 'claude', max_tokens: 100, messages: user('stream from claude') };
      const plain = await anth.messages.create(params);
      const final = await anth.messages.stream(params).finalMessage();
      assert.deepEqual(sansVolatile(final), sansVolatile(plain));
      const r = await streamSSE(`${g.pd.url}/v1/messages`, { ...params, stream: true },
        { headers: { 'x-api-key': GATEWAY_KEY } });
      assert.equal(r.status, 200);
      assert.ok(r.events.some((e) => e.event === 'ping'), 'ping relayed');
      assertAnthropicStream(r.events);
    });

    test('thinking with its signature, and tools, survive the pass-through', T, async () => {
      const params = { model: 'claude', max_tokens: 500, thinking: { type: 'enabled', budget_tokens: 1024 },
        tools: ANTH_TOOLS, messages: user('think, then call tools') };
      const plain = await anth.messages.create(params);
      assert.equal(plain.content[0].type, 'thinking');
      assert.match(plain.content[0].signature, /^mocksig_/);
      assert.equal(plain.stop_reason, 'tool_use');
      assert.equal(plain.content.filter((b) => b.type === 'tool_use').length, 2);
      const final = await anth.messages.stream(params).finalMessage();
      assert.deepEqual(sansVolatile(final), sansVolatile(plain));
    });

    test('upstream errors: 529 overloaded, 401, and an in-stream error event', T, async () => {
      g.anthMock.control({ status: 529 });
      await assert.rejects(anth.messages.create({ model: 'claude', max_tokens: 5, messages: user('x') }), (e) => {
        assert.equal(e.status, 529, `got ${e.constructor.name}: ${e.message}`);
        assert.equal(e.type, 'overloaded_error');
        return true;
      });
      g.anthMock.control({ status: 401 });
      await assert.rejects(anth.messages.create({ model: 'claude', max_tokens: 5, messages: user('x') }),
        (e) => e instanceof Anthropic.AuthenticationError && e.type === 'authentication_error');
      g.anthMock.control({ error_event_at: 4 });
      await assert.rejects(anth.messages.stream({ model: 'claude', max_tokens: 50, messages: user('a b c d') }).finalMessage(),
        (e) => e instanceof Anthropic.APIError && e.type === 'overloaded_error' && /Overloaded/.test(e.message));
      g.anthMock.control({ cut_after: 4 });
      await assert.rejects(anth.messages.stream({ model: 'claude', max_tokens: 50, messages: user('a b c d') }).finalMessage(),
        (e) => e instanceof Anthropic.APIError);
    });
  });

  // ---- C. OpenAI client, Anthropic upstream --------------------------------------------------

  describe('C. OpenAI SDK -> /v1/chat/completions -> Anthropic upstream', () => {
    test('text: a chat.completion; the upstream got an Anthropic request', T, async () => {
      g.anthMock.control({ cache_read: 100, cache_write: 10 });
      const c = await oai.chat.completions.create({ model: 'claude', temperature: 1.7, top_p: 0.9,
        messages: [{ role: 'system', content: 'Be brief.' }, ...user('hello from openai')] });
      assert.equal(c.object, 'chat.completion');
      assert.equal(c.choices[0].message.content, 'mock reply to: hello from openai');
      assert.equal(c.choices[0].finish_reason, 'stop');
      const [up] = sent(g.anthMock, '/v1/messages');
      assert.equal(up.headers['x-api-key'], 'k');
      assert.equal(up.headers['anthropic-version'], '2023-06-01');
      assert.equal(up.headers.authorization, undefined);
      assert.deepEqual(up.body, { model: 'claude-real-name', max_tokens: 4096, system: 'Be brief.',
        messages: [{ role: 'user', content: 'hello from openai' }], temperature: 1 });
      // Anthropic's input_tokens excludes the cache; OpenAI's prompt_tokens includes it
      const input = 2 + (3 + 3) + 3; // the mock's count: system words + (3 + words) + 3
      assert.equal(c.usage.prompt_tokens, input + 100 + 10);
      assert.equal(c.usage.prompt_tokens_details.cached_tokens, 100);
      assert.equal(c.usage.completion_tokens, 6);
      assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + 6);
    });

    test('streaming: content and usage; finalChatCompletion equals the non-streaming result', T, async () => {
      const params = { model: 'claude', messages: user('stream to openai'), max_completion_tokens: 50 };
      const plain = await oai.chat.completions.create(params);
      const chunks = await drain(await oai.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }));
      assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'mock reply to: stream to openai');
      assert.deepEqual(chunks.at(-1).usage, plain.usage);
      assert.ok(chunks.slice(0, -1).every((c) => !c.usage), 'usage only on the last chunk');
      const final = await oai.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
      assert.deepEqual(essence(final), essence(plain));
      const noUsage = await drain(await oai.chat.completions.create({ ...params, stream: true }));
      assert.ok(noUsage.every((c) => !c.usage && c.choices.length === 1), 'no usage chunk unless asked');
      const [up] = sent(g.anthMock, '/v1/messages');
      assert.equal(up.body.max_tokens, 50);
    });

    test('tools: tool_calls with argument strings; the accumulator equals the non-streaming result', T, async () => {
      const params = { model: 'claude', tools: OAI_TOOLS, messages: user('weather and time in Rome') };
      const plain = await oai.chat.completions.create(params);
      const calls = plain.choices[0].message.tool_calls;
      assert.equal(plain.choices[0].finish_reason, 'tool_calls');
      assert.equal(calls.length, 2);
      assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'mock-city', days: 7 });
      assert.match(calls[0].id, /^toolu_/);
      const [up] = sent(g.anthMock, '/v1/messages');
      assert.deepEqual(up.body.tools, ANTH_TOOLS);
      const runner = oai.chat.completions.stream({ ...params, stream_options: { include_usage: true } });
      const argDeltas = [];
      runner.on('tool_calls.function.arguments.delta', (e) => argDeltas.push(e.arguments_delta));
      const final = await runner.finalChatCompletion();
      assert.deepEqual(essence(final), essence(plain));
      assert.ok(argDeltas.length >= 4, `${argDeltas.length} argument deltas`);
      const one = await oai.chat.completions.create({ ...params, parallel_tool_calls: false });
      assert.equal(one.choices[0].message.tool_calls.length, 1);
      assert.deepEqual(sent(g.anthMock, '/v1/messages').at(-1).body.tool_choice, { type: 'auto', disable_parallel_tool_use: true });
    });

    test('response_format json_schema and json_object: a forced tool whose input is the content', T, async () => {
      const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' },
        tags: { type: 'array' } }, required: ['name', 'age'] };
      const params = { model: 'claude', messages: user('Alice is 31'),
        response_format: { type: 'json_schema', json_schema: { name: 'person', description: 'A person', schema } } };
      const plain = await oai.chat.completions.create(params);
      const msg = plain.choices[0].message;
      assert.equal(plain.choices[0].finish_reason, 'stop');
      assert.equal(msg.tool_calls, undefined);
      assert.deepEqual(JSON.parse(msg.content), { name: 'mock-name', age: 7, tags: [] });
      const [up] = sent(g.anthMock, '/v1/messages');
      assert.deepEqual(up.body.tools, [{ name: 'json_response', description: 'A person', input_schema: schema }]);
      assert.deepEqual(up.body.tool_choice, { type: 'tool', name: 'json_response', disable_parallel_tool_use: true });
      assert.equal(up.body.response_format, undefined);

      const chunks = await drain(await oai.chat.completions.create({ ...params, stream: true }));
      assert.ok(chunks.every((c) => !c.choices[0]?.delta?.tool_calls), 'no tool call is shown');
      assert.ok(chunks.filter((c) => c.choices[0]?.delta?.content).length >= 3, 'the JSON comes in several deltas');
      assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), msg.content);
      const final = await oai.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
      assert.deepEqual(essence(final), essence(plain));

      const obj = await oai.chat.completions.create({ model: 'claude', messages: user('any object'), response_format: { type: 'json_object' } });
      assert.equal(obj.choices[0].finish_reason, 'stop');
      assert.deepEqual(JSON.parse(obj.choices[0].message.content), {});
      assert.deepEqual(sent(g.anthMock, '/v1/messages').at(-1).body.tools, [{ name: 'json_response', input_schema: { type: 'object' } }]);
      const objFinal = await oai.chat.completions.stream({ model: 'claude', messages: user('any object'),
        response_format: { type: 'json_object' }, stream_options: { include_usage: true } }).finalChatCompletion();
      assert.deepEqual(essence(objFinal), essence(obj));
    });

    test('a tool-call conversation is sent as Anthropic turns', T, async () => {
      await oai.chat.completions.create({ model: 'claude', tools: OAI_TOOLS, tool_choice: 'none', messages: [
        { role: 'user', content: 'weather and time?' },
        { role: 'assistant', content: null, tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
          { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '20C' },
        { role: 'tool', tool_call_id: 'call_2', content: '12:00' },
      ] });
      const [up] = sent(g.anthMock, '/v1/messages');
      assert.deepEqual(up.body.messages, [
        { role: 'user', content: 'weather and time?' },
        { role: 'assistant', content: [
          { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Rome' } },
          { type: 'tool_use', id: 'call_2', name: 'get_time', input: {} }] },
        { role: 'user', content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: '20C' },
          { type: 'tool_result', tool_use_id: 'call_2', content: '12:00' }] },
      ]);
      assert.deepEqual(up.body.tool_choice, { type: 'none' });
    });

    test('what Anthropic cannot honour is a 400 in OpenAI\'s shape, before the upstream', T, async () => {
      for (const [extra, what] of [
        [{ response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object' } } }, tools: OAI_TOOLS },
          /response_format 'json_schema' together with tools cannot be honoured by provider kind anthropic/],
        [{ response_format: { type: 'json_object' }, tool_choice: 'required' },
          /tool_choice 'required' or a named tool with response_format 'json_object' cannot be honoured/],
        [{ n: 2 }, /n > 1 cannot be honoured/],
        [{ logprobs: true }, /logprobs cannot be honoured/],
      ]) {
        await assert.rejects(oai.chat.completions.create({ model: 'claude', messages: user('x'), ...extra }), (e) => {
          assert.ok(e instanceof OpenAI.BadRequestError, `got ${e.constructor.name}: ${e.message}`);
          assert.equal(e.type, 'invalid_request_error');
          assert.match(e.message, what);
          return true;
        });
      }
      assert.equal(sent(g.anthMock, '/v1/messages').length, 0);
    });

    test('upstream errors reach the OpenAI SDK in OpenAI\'s shape', T, async () => {
      g.anthMock.control({ status: 529 });
      await assert.rejects(oai.chat.completions.create({ model: 'claude', messages: user('x') }), (e) => {
        assert.ok(e instanceof OpenAI.InternalServerError, `got ${e.constructor.name}: ${e.message}`);
        assert.match(e.message, /Overloaded/);
        return true;
      });
      g.anthMock.control({ status: 429, headers: { 'retry-after': '3' } });
      const r = await postJSON(`${g.pd.url}/v1/chat/completions`, { model: 'claude', messages: user('x') },
        { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
      assert.equal(r.status, 429);
      assert.equal(r.headers['retry-after'], '3');
      assert.equal(typeof r.json?.error?.message, 'string', `OpenAI shape, got ${r.text}`);
      assert.match(r.json.error.message, /rate limit/);
      assert.equal(r.json.type, undefined, 'not Anthropic\'s shape');
    });

    test('broken Anthropic streams: the OpenAI SDK throws while iterating', T, async () => {
      for (const knob of [{ error_event_at: 4 }, { cut_after: 4 }, { malformed_at: 4 }]) {
        g.anthMock.control(knob);
        const stream = await oai.chat.completions.create({ model: 'claude', stream: true, messages: user('one two three four') });
        const seen = [];
        await assert.rejects((async () => { for await (const c of stream) seen.push(c); })(), (e) => {
          assert.ok(e instanceof OpenAI.APIError, `${JSON.stringify(knob)}: got ${e.constructor.name}: ${e.message}`);
          if (knob.error_event_at) assert.match(e.message, /Overloaded/);
          return true;
        });
      }
    });
  });

  test('pendulum exits 0 on SIGTERM with no sanitizer report', { timeout: 10000 }, async () => {
    const pd = g.pd;
    await pd.stop();
    assert.deepEqual(pd.exit, { code: 0, signal: null });
  });
});
