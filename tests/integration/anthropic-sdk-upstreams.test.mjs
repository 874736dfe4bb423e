// The official @anthropic-ai/sdk against Pendulum's /v1/messages with the translating upstream
// kinds (Cohere, Ollama): a Message comes back, the stream accumulator equals it, tool calls
// arrive as tool_use blocks. (OpenAI and Anthropic upstreams: anthropic.test.mjs.)

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock as startCohere } from '../mock/cohere-mock.mjs';
import { startMock as startOllama } from '../mock/ollama-mock.mjs';
import { startPendulum } from './lib/pendulum.mjs';

const T = { timeout: 15000 };
const TOOLS = [{ name: 'get_weather', description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

const essence = (m) => ({
  role: m.role, stop_reason: m.stop_reason,
  content: m.content.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : { type: b.type, name: b.name, input: b.input })),
  usage: { input_tokens: m.usage.input_tokens, output_tokens: m.usage.output_tokens },
});

const UPSTREAMS = [
  ['cohere', () => startCohere({ apiKey: 'k' }), (m) => ({ name: 'up', kind: 'cohere', base_url: m.url, api_key: 'k' })],
  ['ollama', () => startOllama(), (m) => ({ name: 'up', kind: 'ollama', base_url: m.url })],
];

for (const [kind, start, provider] of UPSTREAMS) {
  describe(`Anthropic SDK -> /v1/messages -> ${kind} upstream`, () => {
    let mock, pd, anth;
    before(async () => {
      mock = await start();
      pd = await startPendulum({ providers: [provider(mock)], models: [{ name: 'm', provider: 'up' }] });
      anth = new Anthropic({ baseURL: pd.url, apiKey: 'unused', maxRetries: 0, timeout: 10000 });
    }, { timeout: 20000 });
    after(async () => { await pd.stop(); await mock.close(); });

    test('text: a Message, and the stream accumulator equals it', T, async () => {
      const params = { model: 'm', max_tokens: 64, messages: [{ role: 'user', content: 'hello there' }] };
      const whole = await anth.messages.create(params);
      assert.equal(whole.type, 'message');
      assert.ok(whole.content[0].text.length > 0);
      assert.ok(whole.usage.output_tokens > 0);
      const final = await anth.messages.stream(params).finalMessage();
      assert.deepEqual(essence(final), essence(whole));
    });

    test('tools: tool_use blocks with object inputs, streamed the same', T, async () => {
      const params = { model: 'm', max_tokens: 64, tools: TOOLS,
        messages: [{ role: 'user', content: 'weather in Paris?' }] };
      const whole = await anth.messages.create(params);
      assert.equal(whole.stop_reason, 'tool_use');
      const use = whole.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.equal(typeof use.input, 'object');
      const final = await anth.messages.stream(params).finalMessage();
      assert.deepEqual(essence(final), essence(whole));
    });
  });
}
