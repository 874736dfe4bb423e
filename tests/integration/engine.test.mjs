// The embedded llama.cpp engine (kind: llama) through the gateway, with the official openai SDK:
// /readyz waits for the model, whole and streamed answers (greedy: the stream equals the whole
// answer, logprobs included), usage, max_tokens, a prompt longer than the context (400), a client that goes away
// mid-stream (the next request is served). Engine-level tests against llama-server: tests/engine.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startPendulum } from './lib/pendulum.mjs';
import { request, waitFor } from './lib/http.mjs';
import { llamaSkipReason } from './lib/llama.mjs';

const T = { timeout: 60000 };
const skip = llamaSkipReason();

describe('embedded engine (kind: llama)', { skip: skip || false }, () => {
  let pd, client;
  before(async () => {
    pd = await startPendulum({
      providers: [{ name: 'local', kind: 'llama', model_path: process.env.TINY_MODEL, ctx_size: 2048, parallel: 2, threads: 1,
        embeddings: true, pooling: 'mean' }],
      models: [{ name: 'tiny', provider: 'local' }],
      ledger: 'off',
    });
    await waitFor(async () => (await request(`${pd.url}/readyz`)).status === 200, { timeoutMs: 60000, what: 'model loaded' });
    client = new OpenAI({ baseURL: `${pd.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
  }, { timeout: 90000 });
  after(async () => { await pd.stop(); });

  const params = { model: 'tiny', temperature: 0, max_tokens: 12, messages: [{ role: 'user', content: 'Tell me a story' }] };

  test('greedy: the stream equals the whole answer; usage and finish_reason length', T, async () => {
    const whole = await client.chat.completions.create(params);
    assert.equal(whole.choices[0].finish_reason, 'length');
    assert.equal(whole.usage.completion_tokens, 12);
    assert.ok(whole.choices[0].message.content.length > 0);
    const final = await client.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
    assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
    assert.equal(final.usage.completion_tokens, 12);
  });

  test('non-streaming logprobs in OpenAI shape', T, async () => {
    const r = await client.chat.completions.create({ ...params, max_tokens: 3, logprobs: true, top_logprobs: 2 });
    const lp = r.choices[0].logprobs.content;
    assert.equal(lp.length, 3);
    for (const t of lp) {
      assert.ok(t.logprob <= 0 && typeof t.token === 'string');
      assert.equal(t.top_logprobs.length, 2);
      assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    }
  });

  test('streamed logprobs: the chunks add up to the whole answer\'s logprobs', T, async () => {
    const p = { ...params, max_tokens: 16, logprobs: true, top_logprobs: 3 };
    const whole = await client.chat.completions.create(p);
    const want = whole.choices[0].logprobs.content;
    assert.equal(want.length, 16);
    const same = (got, what) => {
      assert.equal(got.length, want.length, `${what}: one entry per token`);
      got.forEach((t, i) => {
        assert.equal(t.token, want[i].token, `${what}: token ${i}`);
        assert.deepEqual(t.bytes, want[i].bytes);
        assert.ok(Math.abs(t.logprob - want[i].logprob) < 1e-3, `${what}: logprob ${i}`);
        assert.deepEqual(t.top_logprobs.map((x) => x.token), want[i].top_logprobs.map((x) => x.token));
        t.top_logprobs.forEach((x, k) => assert.ok(Math.abs(x.logprob - want[i].top_logprobs[k].logprob) < 1e-3));
      });
    };
    // by hand, chunk by chunk
    const got = [];
    let text = '';
    for await (const chunk of await client.chat.completions.create({ ...p, stream: true })) {
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta?.content ?? '';
      if (c.logprobs) got.push(...c.logprobs.content);
    }
    assert.equal(text, whole.choices[0].message.content);
    same(got, 'chunks');
    // and the SDK's own accumulator
    const final = await client.chat.completions.stream(p).finalChatCompletion();
    same(final.choices[0].logprobs.content, 'finalChatCompletion');
  });

  test('/v1/embeddings from the same model: one normalised vector per input', T, async () => {
    const r = await client.embeddings.create({ model: 'tiny', input: ['hello', 'a longer second input'] });
    assert.equal(r.data.length, 2);
    for (const d of r.data) {
      const norm = Math.sqrt(d.embedding.reduce((a, x) => a + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-3, `L2-normalised (${norm})`);
    }
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
  });

  test('a prompt longer than the context: 400 context_length_exceeded', T, async () => {
    await assert.rejects(client.chat.completions.create({ ...params, messages: [{ role: 'user', content: 'hello '.repeat(3000) }] }),
      (e) => { assert.ok(e instanceof OpenAI.BadRequestError); assert.equal(e.code, 'context_length_exceeded'); return true; });
  });

  test('a client that leaves mid-stream frees its sequence: the next requests are served', T, async () => {
    const ctrl = new AbortController();
    const stream = await client.chat.completions.create({ ...params, max_tokens: 1500, stream: true }, { signal: ctrl.signal });
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 3) ctrl.abort();
    } catch (e) {
      assert.ok(e instanceof OpenAI.APIUserAbortError, `aborted by the client, got ${e.constructor.name}`);
    }
    assert.ok(n >= 3 && n < 1500, `the client left after ${n} chunks`);
    const again = await Promise.all([client.chat.completions.create(params), client.chat.completions.create(params)]);
    for (const r of again) assert.equal(r.choices[0].finish_reason, 'length');
  });
});
