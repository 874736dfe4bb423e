// Through pendulum to a real llama.cpp llama-server running the tiny random-weight model
// ($TINY_MODEL, from `make model`). The text is gibberish; the shapes, usage and limits are real.
// Skipped (with the reason) only while the model file does not exist.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { llamaSkipReason, startLlama } from './lib/llama.mjs';
import { startPendulum } from './lib/pendulum.mjs';

const skip = llamaSkipReason();
const T = { timeout: 60000 };
const user = (content) => [{ role: 'user', content }];

describe('llama-server with the tiny model, through pendulum', { skip: skip ?? false }, () => {
  let llama;
  let pd;
  let client;
  before(async () => {
    llama = await startLlama();
    // a CPU model: generous upstream timeouts so a busy machine does not turn into 504s
    pd = await startPendulum({
      upstream: { connect_ms: 2000, ttfb_ms: 30000, idle_ms: 15000, total_ms: 60000 },
      providers: [{ name: 'local', kind: 'openai', base_url: `${llama.url}/v1` }],
      models: [{ name: 'tiny-local', provider: 'local' }],
    });
    client = new OpenAI({ baseURL: `${pd.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  }, { timeout: 90000 });

  after(async () => {
    try {
      if (pd) await pd.stop();
    } finally {
      if (llama) await llama.stop();
    }
  }, { timeout: 15000 });

  test('non-streaming: non-empty content and usage', T, async () => {
    const r = await client.chat.completions.create({ model: 'tiny-local', max_tokens: 16, temperature: 0.8, seed: 1,
      messages: user('Say something.') });
    assert.equal(r.object, 'chat.completion');
    const content = r.choices[0].message.content;
    assert.equal(typeof content, 'string');
    assert.ok(content.length > 0, 'content is not empty');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 0, 'prompt_tokens');
    assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 16, `completion_tokens ${r.usage.completion_tokens}`);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  test('streaming with include_usage: chunks, usage, [DONE] via the SDK', T, async () => {
    const stream = await client.chat.completions.create({ model: 'tiny-local', max_tokens: 12, stream: true,
      stream_options: { include_usage: true }, messages: user('Stream something.') });
    let text = '';
    let usage = null;
    let chunks = 0;
    let finish = null;
    for await (const c of stream) {
      chunks++;
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    assert.ok(chunks >= 3, `${chunks} chunks`);
    assert.ok(text.length > 0, 'streamed content is not empty');
    assert.ok(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
    assert.ok(usage, 'a usage chunk arrived');
    assert.ok(usage.completion_tokens > 0 && usage.completion_tokens <= 12);
  });

  test('max_tokens 5: finish_reason length and completion_tokens 5', T, async () => {
    const r = await client.chat.completions.create({ model: 'tiny-local', max_tokens: 5,
      messages: user('Write a long story about the sea.') });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 5);
    const final = await client.chat.completions.stream({ model: 'tiny-local', max_tokens: 5,
      stream_options: { include_usage: true }, messages: user('Write a long story about the sea.') }).finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'length');
    assert.equal(final.usage.completion_tokens, 5);
  });
});
