// Streaming through pendulum: incremental relay, usage, tool-call fragments, every way an upstream
// stream can break (which must end in a `data: {"error":...}` event and no [DONE]), and a client
// that goes away (which must abort the upstream transfer at once).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { streamSSE, postJSON, mockControl, mockChatRequests, waitFor } from './lib/http.mjs';
import { useGateway, testCleanExit, chat, TOOLS, contentOf } from './lib/gateway.mjs';

const T = { timeout: 15000 };

// The stream broke: the last event is an OpenAI error object and [DONE] never came.
function assertBrokenStream(r, { message } = {}) {
  assert.equal(r.status, 200, 'the stream had started');
  assert.ok(r.events.length > 0, 'some events arrived');
  assert.equal(r.events.filter((e) => e.data === '[DONE]').length, 0, `no [DONE]; events: ${r.events.map((e) => e.data).join(' | ').slice(0, 600)}`);
  const last = r.events.at(-1);
  assert.ok(last.json && last.json.error && typeof last.json.error === 'object',
    `last event is {"error":{...}}, got: ${last.data.slice(0, 300)}`);
  assert.equal(typeof last.json.error.message, 'string');
  assert.ok(last.json.error.message.length > 0);
  if (message !== undefined) assert.equal(last.json.error.message, message);
  assert.equal(r.events.filter((e) => e.json && e.json.error).length, 1, 'one error event');
}

describe('streaming', () => {
  const g = useGateway();
  const url = () => `${g.url}/v1/chat/completions`;

  test('a complete stream: role first, finish chunk, [DONE] exactly once', T, async () => {
    const r = await streamSSE(url(), chat('complete stream please', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete');
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    const chunks = r.events.slice(0, -1).map((e) => e.json);
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.equal(r.events.filter((e) => e.data === '[DONE]').length, 1);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
    assert.equal(contentOf(r.events), 'mock reply to: complete stream please');
    for (const c of chunks) assert.ok(!('usage' in c), 'no usage without include_usage');
  });

  test('stream_options.include_usage: the usage chunk arrives before [DONE]', T, async () => {
    const r = await streamSSE(url(), chat('count me', { stream: true, stream_options: { include_usage: true } }));
    const usage = r.events.at(-2).json;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.completion_tokens, 5); // "mock reply to: count me"
    assert.equal(usage.usage.total_tokens, usage.usage.prompt_tokens + 5);
    const [up] = await mockChatRequests(g.mockUrl);
    assert.deepEqual(up.body.stream_options, { include_usage: true });
  });

  test('relayed incrementally: the first chunk arrives long before the last', T, async () => {
    await mockControl(g.mockUrl, { drip_ms: 300, chunks: 5 });
    const r = await streamSSE(url(), chat('drip', { stream: true }));
    assert.equal(r.events.at(-1).data, '[DONE]');
    const content = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content);
    assert.equal(content.length, 5);
    const spread = content.at(-1).t - content[0].t;
    assert.ok(spread >= 900, `first content at ${content[0].t} ms, last at ${content.at(-1).t} ms: buffered?`);
    for (let i = 1; i < content.length; i++) {
      assert.ok(content[i].t - content[i - 1].t >= 100, `chunk ${i} came ${content[i].t - content[i - 1].t} ms after the previous`);
    }
  });

  test('tool-call argument fragments are relayed as fragments and add up', T, async () => {
    const body = chat('weather and time in Paris', { tools: TOOLS });
    const plain = await postJSON(url(), body);
    assert.equal(plain.status, 200, plain.text);
    const expected = plain.json.choices[0].message.tool_calls;
    assert.equal(expected.length, 2);
    await mockControl(g.mockUrl, { drip_ms: 20 });
    const r = await streamSSE(url(), { ...body, stream: true });
    assert.equal(r.events.at(-1).data, '[DONE]');
    const acc = [];
    let fragments = 0;
    for (const e of r.events.slice(0, -1)) {
      for (const tc of e.json.choices[0]?.delta?.tool_calls ?? []) {
        fragments++;
        acc[tc.index] ??= { id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: '' } };
        acc[tc.index].function.arguments += tc.function.arguments ?? '';
      }
    }
    assert.ok(fragments >= 6, `${fragments} tool-call fragments`);
    assert.deepEqual(acc, expected);
    assert.equal(r.events.at(-2).json.choices[0].finish_reason, 'tool_calls');
  });

  test('upstream cut mid-stream: error event, no [DONE]', T, async () => {
    await mockControl(g.mockUrl, { cut_after: 3, drip_ms: 20 });
    const r = await streamSSE(url(), chat('one two three four five six', { stream: true }));
    assertBrokenStream(r);
    assert.equal(contentOf(r.events), 'mock reply', 'what came before the cut was relayed');
  });

  test('malformed upstream chunk: error event, no [DONE] (even though the upstream goes on)', T, async () => {
    await mockControl(g.mockUrl, { malformed_at: 3, drip_ms: 20 });
    const r = await streamSSE(url(), chat('one two three four', { stream: true }));
    assertBrokenStream(r);
    assert.equal(contentOf(r.events), 'mock', 'nothing after the malformed chunk is relayed');
  });

  test('upstream idle longer than idle_ms: error event, no [DONE], upstream dropped', T, async () => {
    await mockControl(g.mockUrl, { drip_ms: 2500, chunks: 3 });
    const r = await streamSSE(url(), chat('slow', { stream: true }));
    assertBrokenStream(r);
    const gap = r.events.at(-1).t - r.events.at(-2).t;
    assert.ok(gap >= 800 && gap < 2300, `error came ${gap} ms after the last chunk (idle_ms 1000)`);
    const e = await waitFor(async () => (await mockChatRequests(g.mockUrl)).find((x) => x.aborted),
      { timeoutMs: 2000, what: 'the upstream request to be closed' });
    assert.equal(e.aborted, true);
  });

  test('upstream data: {"error":...} event: relayed, stream ends without [DONE]', T, async () => {
    const error = { message: 'upstream broke mid-way', type: 'server_error', param: null, code: null };
    await mockControl(g.mockUrl, { error_event_at: 3, error });
    const r = await streamSSE(url(), chat('one two three four', { stream: true }));
    assertBrokenStream(r, { message: 'upstream broke mid-way' });
    assert.equal(contentOf(r.events), 'mock');
  });

  test('client disconnect mid-stream aborts the upstream transfer at once', T, async () => {
    await mockControl(g.mockUrl, { drip_ms: 200, chunks: 25 });
    let seen = 0;
    const r = await streamSSE(url(), chat('long one', { stream: true }), {
      onEvent: (e, ctx) => { if (e.json?.choices?.[0]?.delta?.content && ++seen === 2) ctx.abort(); },
    });
    assert.equal(r.end, 'aborted');
    const e = await waitFor(async () => (await mockChatRequests(g.mockUrl)).find((x) => x.aborted),
      { timeoutMs: 3000, what: 'the mock to see the upstream request aborted' });
    const lag = e.aborted_at - r.closedAt;
    assert.ok(lag <= 500, `upstream aborted ${lag} ms after the client closed`);
    assert.equal(e.finished_at, null, 'the upstream response never finished');
  });

  test('a client that disconnects while waiting for the first byte aborts the upstream too', T, async () => {
    await mockControl(g.mockUrl, { latency_ms: 1500 });
    const p = streamSSE(url(), chat('x', { stream: true }), { timeoutMs: 400 }).catch(() => 'timed out');
    assert.equal(await p, 'timed out');
    const closedAt = Date.now();
    const e = await waitFor(async () => (await mockChatRequests(g.mockUrl)).find((x) => x.aborted),
      { timeoutMs: 2000, what: 'the upstream request to be aborted' });
    assert.ok(e.aborted_at - closedAt <= 500, `upstream aborted ${e.aborted_at - closedAt} ms after the client closed`);
  });

  testCleanExit(g);
});
