// Translating upstreams through the official openai SDK: pendulum in front of a Cohere mock
// (kind: cohere, /v2/chat and /v2/embed) and an Ollama mock (kind: ollama, /api/chat NDJSON and
// /api/embed; plus kind: openai at the same mock's /v1 for OpenAI-compatible embeddings).
// What a real application sees, and what the upstream was really sent.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock as startCohere, mockVector as cohereVector } from '../mock/cohere-mock.mjs';
import { startMock as startOllama, mockVector as ollamaVector } from '../mock/ollama-mock.mjs';
import { startPendulum } from './lib/pendulum.mjs';
import { request } from './lib/http.mjs';

const T = { timeout: 15000 };
const user = (content) => [{ role: 'user', content }];

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Time in a zone',
    parameters: { type: 'object', properties: { zone: { type: 'string' } } } } },
];

async function drain(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

// Upstream requests the mock logged for one path.
const sent = (mock, path) => mock.requests().filter((e) => e.path.split('?')[0] === path);

// One mock (started by `start`) behind one pendulum; `client` talks to pendulum.
function useUpstream(start, providers, models) {
  const ctx = {};
  before(async () => {
    ctx.mock = await start();
    ctx.pd = await startPendulum({ providers: providers(ctx.mock), models });
    ctx.client = new OpenAI({ baseURL: `${ctx.pd.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10000 });
  }, { timeout: 20000 });
  after(async () => {
    try {
      if (ctx.pd) await ctx.pd.stop();
    } finally {
      if (ctx.mock) await ctx.mock.close();
    }
  }, { timeout: 15000 });
  afterEach(async () => {
    if (ctx.mock) ctx.mock.reset();
    if (!ctx.pd || ctx.pd.stopped) return;
    ctx.pd.checkAlive();
    const h = await request(`${ctx.pd.url}/healthz`, { timeoutMs: 3000 });
    assert.equal(h.status, 200, 'pendulum still serves GET /healthz');
  }, { timeout: 5000 });
  return ctx;
}

// The parts of a completion that streaming must reproduce exactly.
function essence(c) {
  const m = c.choices[0].message;
  return {
    content: m.content ?? null,
    tool_calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, type: t.type, function: { name: t.function.name, arguments: t.function.arguments } })),
    finish_reason: c.choices[0].finish_reason,
    usage: c.usage ? { prompt_tokens: c.usage.prompt_tokens, completion_tokens: c.usage.completion_tokens, total_tokens: c.usage.total_tokens } : null,
  };
}

async function assertBrokenStream(client, params, pattern) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const seen = [];
  await assert.rejects((async () => { for await (const c of stream) seen.push(c); })(), (e) => {
    assert.ok(e instanceof OpenAI.APIError, `expected APIError, got ${e.constructor.name}: ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
  return seen;
}

// ---- Cohere -------------------------------------------------------------------------------

describe('cohere upstream (kind: cohere)', () => {
  const g = useUpstream(() => startCohere({ apiKey: 'k' }),
    (m) => [{ name: 'co', kind: 'cohere', base_url: m.url, api_key: 'k' }],
    [{ name: 'command', provider: 'co', upstream_model: 'command-a-03-2025' },
      { name: 'co-embed', provider: 'co', upstream_model: 'embed-v4.0' }]);

  test('non-streaming: text, finish reason, usage from usage.tokens; the wire request', T, async () => {
    const r = await g.client.chat.completions.create({ model: 'command', messages: [
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello cohere' }],
    max_tokens: 50, temperature: 0.3, top_p: 1, presence_penalty: 1.5, stop: ['END'] });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.content, 'mock reply to: hello cohere');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [2 + 64, 5, 71]);
    const [up] = sent(g.mock, '/v2/chat');
    assert.equal(up.headers.authorization, 'Bearer k');
    assert.deepEqual(up.body, { model: 'command-a-03-2025',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello cohere' }],
      max_tokens: 50, temperature: 0.3, p: 0.99, stop_sequences: ['END'], presence_penalty: 1, stream: false });
  });

  test('streaming with include_usage: content, finish and usage arrive', T, async () => {
    const chunks = await drain(await g.client.chat.completions.create({ model: 'command', stream: true,
      stream_options: { include_usage: true }, messages: user('stream from cohere') }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'mock reply to: stream from cohere');
    assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).at(-1).choices[0].finish_reason, 'stop');
    const usage = chunks.at(-1).usage;
    assert.ok(usage, 'the last chunk carries usage');
    assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [3 + 64, 6]);
    assert.equal(sent(g.mock, '/v2/chat')[0].body.stream, true);
  });

  test('max_tokens: finish_reason length, streaming and not', T, async () => {
    const params = { model: 'command', max_tokens: 2, messages: user('a b c d') };
    const plain = await g.client.chat.completions.create(params);
    assert.equal(plain.choices[0].message.content, 'mock reply');
    assert.equal(plain.choices[0].finish_reason, 'length');
    const final = await g.client.chat.completions.stream(params).finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'mock reply');
    assert.equal(final.choices[0].finish_reason, 'length');
  });

  test('tools: finalChatCompletion equals the non-streaming result', T, async () => {
    const params = { model: 'command', tools: TOOLS, messages: user('weather and time in Oslo') };
    const plain = await g.client.chat.completions.create(params);
    assert.equal(plain.choices[0].finish_reason, 'tool_calls');
    assert.equal(plain.choices[0].message.tool_calls.length, 2);
    assert.deepEqual(JSON.parse(plain.choices[0].message.tool_calls[0].function.arguments), { city: 'mock-city', days: 7 });
    const runner = g.client.chat.completions.stream({ ...params, stream_options: { include_usage: true } });
    const deltas = [];
    runner.on('tool_calls.function.arguments.delta', (e) => deltas.push(e.arguments_delta));
    const final = await runner.finalChatCompletion();
    assert.deepEqual(essence(final), essence(plain));
    assert.ok(deltas.length >= 4, `${deltas.length} argument deltas (streamed in fragments)`);
    const ups = sent(g.mock, '/v2/chat');
    assert.deepEqual(ups[0].body.tools.map((t) => t.function.name), ['get_weather', 'get_time']);
    assert.equal(ups[0].body.tool_choice, undefined, 'auto is expressed by omitting tool_choice');
  });

  test('tool history, named tool_choice and json_object translate on the wire', T, async () => {
    const r = await g.client.chat.completions.create({ model: 'command', tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
      response_format: { type: 'json_object' },
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '3C' },
        { role: 'user', content: 'and the time?' }] });
    assert.equal(r.choices[0].message.tool_calls[0].function.name, 'get_time');
    const [up] = sent(g.mock, '/v2/chat');
    assert.deepEqual(up.body.messages[1], { role: 'assistant', tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] });
    assert.deepEqual(up.body.messages[2], { role: 'tool', tool_call_id: 'call_1', content: '3C' });
    assert.deepEqual(up.body.tools.map((t) => t.function.name), ['get_time']);
    assert.equal(up.body.tool_choice, 'REQUIRED');
    assert.deepEqual(up.body.response_format, { type: 'json_object' });
  });

  test('errors keep their status class', T, async () => {
    g.mock.control({ status: 429, message: 'You are using a Trial key, limited to 10 calls / minute.', headers: { 'retry-after': '7' } });
    await assert.rejects(g.client.chat.completions.create({ model: 'command', messages: user('x') }), (e) => {
      assert.ok(e instanceof OpenAI.RateLimitError, `got ${e.constructor.name}`);
      assert.match(e.message, /Trial key/);
      return true;
    });
    g.mock.control({ status: 401 });
    await assert.rejects(g.client.chat.completions.create({ model: 'command', messages: user('x') }),
      (e) => e instanceof OpenAI.AuthenticationError && /invalid api token/.test(e.message));
    g.mock.control({ status: 500 });
    await assert.rejects(g.client.chat.completions.create({ model: 'command', messages: user('x') }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 500);
    g.mock.control({ status: 502, body: '<html><body>502 Bad Gateway</body></html>' });
    await assert.rejects(g.client.chat.completions.create({ model: 'command', messages: user('x') }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 502 && /Bad Gateway/.test(e.message));
  });

  test('what Cohere cannot express is a 400 before any upstream call', T, async () => {
    await assert.rejects(g.client.chat.completions.create({ model: 'command', n: 2, messages: user('x') }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
    await assert.rejects(g.client.chat.completions.create({ model: 'command', messages: [{ role: 'user', content: [
      { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }] }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].content[0]');
    assert.equal(sent(g.mock, '/v2/chat').length, 0);
  });

  test('an error in message-end breaks the stream: the SDK throws', T, async () => {
    g.mock.control({ error_at: 4, message: 'internal server error, this has been reported' });
    const seen = await assertBrokenStream(g.client, { model: 'command', messages: user('one two three') }, /internal server error/);
    assert.ok(seen.length >= 1, 'chunks before the error were delivered');
  });

  test('a cut or malformed stream is reported, never completed', T, async () => {
    g.mock.control({ cut_after: 3 });
    await assertBrokenStream(g.client, { model: 'command', messages: user('one two three') });
    g.mock.control({ malformed_at: 3 });
    await assertBrokenStream(g.client, { model: 'command', messages: user('one two three') });
  });

  test('embeddings: /v2/embed with input_type, vectors exact through base64 and float', T, async () => {
    const texts = ['hello', 'good bye'];
    const r = await g.client.embeddings.create({ model: 'co-embed', input: texts }); // SDK asks base64
    assert.equal(r.object, 'list');
    assert.deepEqual(r.data.map((d) => d.index), [0, 1]);
    assert.deepEqual(r.data.map((d) => Array.from(d.embedding)), texts.map((t) => cohereVector(t, 8)));
    assert.equal(r.usage.prompt_tokens, 3);
    // floats are written in float32's shortest form (as OpenAI does): exact as float32
    const f = await g.client.embeddings.create({ model: 'co-embed', input: 'hello', encoding_format: 'float', dimensions: 4 });
    assert.deepEqual(f.data[0].embedding.map(Math.fround), cohereVector('hello', 4));
    const ups = sent(g.mock, '/v2/embed');
    assert.deepEqual(ups[0].body, { model: 'embed-v4.0', texts, input_type: 'search_document', embedding_types: ['float'] });
    assert.equal(ups[1].body.output_dimension, 4);
    g.mock.control({ path: '/v2/embed', status: 429 });
    await assert.rejects(g.client.embeddings.create({ model: 'co-embed', input: 'x' }), (e) => e instanceof OpenAI.RateLimitError);
    await assert.rejects(g.client.embeddings.create({ model: 'co-embed', input: [[1, 2, 3]] }),
      (e) => e instanceof OpenAI.BadRequestError && /token-id inputs/.test(e.message));
  });

  test('pendulum exits 0 on SIGTERM with no sanitizer report', T, async () => {
    await g.pd.stop();
    assert.deepEqual(g.pd.exit, { code: 0, signal: null });
  });
});

// ---- Ollama -------------------------------------------------------------------------------

describe('ollama upstream (kind: ollama, and kind: openai at its /v1)', () => {
  const g = useUpstream(() => startOllama(),
    (m) => [{ name: 'ol', kind: 'ollama', base_url: m.url }, { name: 'olv1', kind: 'openai', base_url: `${m.url}/v1`, api_key: 'ollama' }],
    [{ name: 'llama', provider: 'ol', upstream_model: 'llama3.2' },
      { name: 'missing', provider: 'ol', upstream_model: 'missing-model' },
      { name: 'ol-embed', provider: 'ol', upstream_model: 'all-minilm' },
      { name: 'oa-embed', provider: 'olv1', upstream_model: 'nomic-embed-text' }]);

  test('non-streaming: stream:false is sent explicitly; text, finish, usage', T, async () => {
    const r = await g.client.chat.completions.create({ model: 'llama', messages: user('hello ollama'),
      max_completion_tokens: 64, temperature: 0.5, seed: 7, stop: ['END'] });
    assert.equal(r.choices[0].message.content, 'mock reply to: hello ollama');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens], [12, 5]);
    const [up] = sent(g.mock, '/api/chat');
    assert.equal(up.headers.authorization, undefined, 'no key for a local Ollama');
    assert.deepEqual(up.body, { model: 'llama3.2', messages: [{ role: 'user', content: 'hello ollama' }],
      options: { num_predict: 64, temperature: 0.5, stop: ['END'], seed: 7 }, stream: false });
  });

  test('streaming NDJSON with include_usage: content, finish and usage arrive', T, async () => {
    const chunks = await drain(await g.client.chat.completions.create({ model: 'llama', stream: true,
      stream_options: { include_usage: true }, messages: user('stream from ollama') }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'mock reply to: stream from ollama');
    const usage = chunks.at(-1).usage;
    assert.ok(usage, 'the last chunk carries usage');
    assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [13, 6]);
    assert.equal(sent(g.mock, '/api/chat')[0].body.stream, true);
  });

  test('num_predict cut: finish_reason length, streaming and not', T, async () => {
    const params = { model: 'llama', max_tokens: 3, messages: user('a b c d') };
    const plain = await g.client.chat.completions.create(params);
    assert.equal(plain.choices[0].finish_reason, 'length');
    const final = await g.client.chat.completions.stream(params).finalChatCompletion();
    assert.equal(final.choices[0].message.content, plain.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, 'length');
  });

  test('tools: finalChatCompletion equals the non-streaming result', T, async () => {
    const params = { model: 'llama', tools: TOOLS, messages: user('weather and time in Oslo') };
    const plain = await g.client.chat.completions.create(params);
    assert.equal(plain.choices[0].finish_reason, 'tool_calls', 'Ollama says "stop"; tool calls make it tool_calls');
    assert.equal(plain.choices[0].message.tool_calls.length, 2);
    assert.deepEqual(JSON.parse(plain.choices[0].message.tool_calls[0].function.arguments), { city: 'mock-city', days: 7 });
    const final = await g.client.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
    assert.deepEqual(essence(final), essence(plain));
  });

  test('tool history: arguments become objects, tool_name is looked up, images go raw', T, async () => {
    await g.client.chat.completions.create({ model: 'llama', tools: TOOLS, tool_choice: 'none', messages: [
      { role: 'user', content: [{ type: 'text', text: 'weather here?' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
      { role: 'assistant', content: null, tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Oslo", "days": 2}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '3C' },
      { role: 'user', content: 'thanks' }] });
    const [up] = sent(g.mock, '/api/chat');
    assert.deepEqual(up.body.messages[0], { role: 'user', content: 'weather here?', images: ['iVBORw0KGgo='] });
    assert.deepEqual(up.body.messages[1], { role: 'assistant', content: '', tool_calls: [
      { id: 'call_1', function: { index: 0, name: 'get_weather', arguments: { city: 'Oslo', days: 2 } } }] });
    assert.deepEqual(up.body.messages[2], { role: 'tool', content: '3C', tool_name: 'get_weather', tool_call_id: 'call_1' });
    assert.equal(up.body.tools, undefined, 'tool_choice none sends no tools');
  });

  test('what Ollama cannot take is a 400 before any upstream call', T, async () => {
    const bad = (args) => g.client.chat.completions.create({ model: 'llama', messages: [
      { role: 'user', content: 'x' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }] }] });
    await assert.rejects(bad('{"city": "Os'), (e) => e instanceof OpenAI.BadRequestError &&
      e.param === 'messages[1].tool_calls[0].function.arguments' && /not valid JSON/.test(e.message));
    await assert.rejects(bad('[1]'), (e) => e instanceof OpenAI.BadRequestError && /JSON object/.test(e.message));
    await assert.rejects(g.client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: [
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].content[0]');
    assert.equal(sent(g.mock, '/api/chat').length, 0);
  });

  test('errors keep their status class: unpulled model 404, busy 503', T, async () => {
    await assert.rejects(g.client.chat.completions.create({ model: 'missing', messages: user('x') }), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, `got ${e.constructor.name}`);
      assert.match(e.message, /not found, try pulling it first/);
      return true;
    });
    g.mock.control({ status: 503 });
    await assert.rejects(g.client.chat.completions.create({ model: 'llama', messages: user('x') }),
      (e) => e instanceof OpenAI.InternalServerError && e.status === 503 && /server busy/.test(e.message));
    g.mock.control({ status: 400, error: 'json: cannot unmarshal string' });
    await assert.rejects(g.client.chat.completions.create({ model: 'llama', messages: user('x') }),
      (e) => e instanceof OpenAI.BadRequestError && /cannot unmarshal/.test(e.message));
  });

  test('an {"error"} line mid-stream breaks the stream: the SDK throws', T, async () => {
    g.mock.control({ error_at: 3, error: 'an error was encountered while running the model: unexpected EOF' });
    const seen = await assertBrokenStream(g.client, { model: 'llama', messages: user('one two three') }, /unexpected EOF/);
    assert.ok(seen.length >= 1, 'chunks before the error were delivered');
  });

  test('a cut or malformed NDJSON stream is reported, never completed', T, async () => {
    g.mock.control({ cut_after: 2 });
    await assertBrokenStream(g.client, { model: 'llama', messages: user('one two three') });
    g.mock.control({ malformed_at: 2 });
    await assertBrokenStream(g.client, { model: 'llama', messages: user('one two three') });
  });

  test('embeddings: /api/embed, vectors exact through base64 and float', T, async () => {
    const texts = ['why is the sky blue?', 'why is grass green?'];
    const r = await g.client.embeddings.create({ model: 'ol-embed', input: texts });
    assert.deepEqual(r.data.map((d) => Array.from(d.embedding)), texts.map((t) => ollamaVector(t, 8)));
    assert.equal(r.usage.prompt_tokens, 9);
    const f = await g.client.embeddings.create({ model: 'ol-embed', input: 'one', encoding_format: 'float' });
    assert.deepEqual(f.data[0].embedding.map(Math.fround), ollamaVector('one', 8));
    const ups = sent(g.mock, '/api/embed');
    assert.deepEqual(ups[0].body, { model: 'all-minilm', input: texts });
    assert.deepEqual(ups[1].body, { model: 'all-minilm', input: 'one' });
  });

  test('embeddings through kind: openai (Ollama /v1/embeddings)', T, async () => {
    const texts = ['alpha', 'beta gamma'];
    const r = await g.client.embeddings.create({ model: 'oa-embed', input: texts, dimensions: 4 });
    assert.deepEqual(r.data.map((d) => Array.from(d.embedding)), texts.map((t) => ollamaVector(t, 4)));
    assert.deepEqual([r.usage.prompt_tokens, r.usage.total_tokens], [3, 3]);
    const [up] = sent(g.mock, '/v1/embeddings');
    assert.equal(up.body.model, 'nomic-embed-text');
    assert.deepEqual(up.body.input, texts);
    g.mock.control({ path: '/v1/embeddings', status: 500 });
    await assert.rejects(g.client.embeddings.create({ model: 'oa-embed', input: 'x' }), (e) => e instanceof OpenAI.InternalServerError);
  });

  test('pendulum exits 0 on SIGTERM with no sanitizer report', T, async () => {
    await g.pd.stop();
    assert.deepEqual(g.pd.exit, { code: 0, signal: null });
  });
});
