// Routing through the real gateway: fallback chains (connection refused, 429), the privacy split
// (PII kept on a local target, or blocked naming only the types), explainability headers and
// POST /v1/route/explain, checked from the mocks' own request logs.

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock/openai-mock.mjs';
import { startPendulum, freePort } from './lib/pendulum.mjs';
import { postJSON, streamSSE, mockControl, mockChatRequests } from './lib/http.mjs';

const T = { timeout: 20000 };
const ROUTES = `routes:
  - { name: chain, policy: fallback, targets: [dead-model, gpt-4o] }
  - { name: busy-chain, policy: fallback, targets: [gpt-4o, local-model] }
  - { name: private, policy: privacy, pii: { action: local }, local: local-model, cloud: gpt-4o }
  - { name: strict, policy: privacy, pii: { action: block }, local: local-model, cloud: gpt-4o }`;

const msg = (model, content, extra = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });

describe('routing', () => {
  let cloud, local, pd;
  before(async () => {
    cloud = await startMock({ port: 0 });
    local = await startMock({ port: 0 });
    const dead = await freePort();
    pd = await startPendulum({
      providers: [
        { name: 'cloud', kind: 'openai', base_url: `${cloud.url}/v1`, api_key: 'k' },
        { name: 'dead', kind: 'openai', base_url: `http://127.0.0.1:${dead}/v1`, api_key: 'k' },
        { name: 'home', kind: 'openai', base_url: `${local.url}/v1`, local: true },
      ],
      models: [
        { name: 'gpt-4o', provider: 'cloud' },
        { name: 'dead-model', provider: 'dead' },
        { name: 'local-model', provider: 'home' },
      ],
      extra: ROUTES,
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await cloud.close(); await local.close(); });
  beforeEach(() => { cloud.reset(); local.reset(); });

  test('fallback: connection refused moves on to the next target; headers say so', T, async () => {
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('chain', 'hello'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-route'], 'chain');
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
    assert.equal(r.headers['x-pendulum-attempts'], '2');
    assert.ok(r.headers['x-pendulum-reason']);
    assert.equal((await mockChatRequests(cloud.url)).length, 1);
  });

  test('fallback: a stream whose first target is down is served whole by the next', T, async () => {
    const r = await streamSSE(`${pd.url}/v1/chat/completions`, msg('chain', 'stream', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete');
    assert.equal(r.headers['x-pendulum-target'], 'gpt-4o');
  });

  test('fallback: 429 from the first target goes to the next; the first saw one request', T, async () => {
    await mockControl(cloud.url, { count: 1, status: 429, headers: { 'retry-after': '1' } });
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('busy-chain', 'hi'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'local-model');
    assert.equal((await mockChatRequests(cloud.url)).length, 1);
    assert.equal((await mockChatRequests(local.url)).length, 1);
  });

  test('privacy local: PII never reaches the cloud; without PII the cloud serves', T, async () => {
    const secret = 'jane.roe@example.org';
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('private', `mail ${secret} please`));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-pendulum-target'], 'local-model');
    assert.equal((await mockChatRequests(cloud.url)).length, 0, 'the cloud saw nothing');
    const seen = await mockChatRequests(local.url);
    assert.equal(seen.length, 1);
    const plain = await postJSON(`${pd.url}/v1/chat/completions`, msg('private', 'what is 2+2'));
    assert.equal(plain.headers['x-pendulum-target'], 'gpt-4o');
    for (const req of await mockChatRequests(cloud.url))
      assert.ok(!JSON.stringify(req.body).includes(secret));
  });

  test('privacy block: 400 naming the entity types, never the values; nothing sent', T, async () => {
    const ssn = '536-22-8745';
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('strict', `my SSN is ${ssn}`));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'pii_blocked');
    assert.match(r.json.error.message, /US_SSN/);
    assert.ok(!r.text.includes(ssn));
    assert.equal((await mockChatRequests(cloud.url)).length + (await mockChatRequests(local.url)).length, 0);
  });

  test('POST /v1/route/explain: the decision and reasons, no upstream called', T, async () => {
    const r = await postJSON(`${pd.url}/v1/route/explain`, msg('private', 'call me at jane.roe@example.org'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.route, 'private');
    assert.equal(r.json.candidates[0].model, 'local-model');
    assert.ok(r.json.pii.types.includes('EMAIL'));
    assert.equal((await mockChatRequests(cloud.url)).length + (await mockChatRequests(local.url)).length, 0);
  });

  test('compliance header: no target meets "hipaa" -> a clear 400, nothing sent', T, async () => {
    const r = await postJSON(`${pd.url}/v1/chat/completions`, msg('gpt-4o', 'hi'), { headers: { 'x-pendulum-compliance': 'hipaa' } });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'compliance_unsatisfied');
    assert.equal((await mockChatRequests(cloud.url)).length, 0);
  });
});

describe('privacy redact', () => {
  let cloud, local, pd;
  before(async () => {
    cloud = await startMock({ port: 0 });
    local = await startMock({ port: 0 });
    pd = await startPendulum({
      providers: [
        { name: 'cloud', kind: 'openai', base_url: `${cloud.url}/v1`, api_key: 'k' },
        { name: 'home', kind: 'openai', base_url: `${local.url}/v1`, local: true },
      ],
      models: [{ name: 'gpt-4o', provider: 'cloud' }, { name: 'local-model', provider: 'home' }],
      extra: 'routes:\n  - { name: masked, policy: privacy, pii: { action: redact }, local: local-model, cloud: gpt-4o }',
    });
  }, { timeout: 20000 });
  after(async () => { await pd.stop(); await cloud.close(); await local.close(); });
  beforeEach(() => { cloud.reset(); local.reset(); });

  // The mock answers "mock reply to: <last user text>", so the placeholders come back in the
  // answer (split across stream chunks) and Pendulum must restore the originals.
  const secrets = ['jane.roe@example.org', '4111 1111 1111 1111'];
  const text = `write to ${secrets[0]} card ${secrets[1]}`;

  for (const stream of [false, true]) {
    test(`redact (${stream ? 'stream' : 'whole'}): the cloud sees placeholders, the client the originals`, T, async () => {
      const body = msg('masked', text, stream ? { stream: true } : {});
      let content;
      if (stream) {
        const r = await streamSSE(`${pd.url}/v1/chat/completions`, body);
        assert.equal(r.end, 'complete');
        content = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).map((e) => e.json.choices[0].delta.content).join('');
      } else {
        const r = await postJSON(`${pd.url}/v1/chat/completions`, body);
        assert.equal(r.status, 200, r.text);
        content = r.json.choices[0].message.content;
      }
      assert.equal(content, `mock reply to: ${text}`);
      const [up] = await mockChatRequests(cloud.url);
      const sent = JSON.stringify(up.body);
      for (const s of secrets) assert.ok(!sent.includes(s), `the cloud never saw ${s}`);
      assert.match(sent, /<EMAIL_1>/);
      assert.match(sent, /<CREDIT_CARD_1>/);
    });
  }
});

describe('pendulum route --explain', () => {
  test('prints the same decision as the endpoint, without a server', T, async () => {
    const { spawnSync } = await import('node:child_process');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { pendulumBin } = await import('./lib/pendulum.mjs');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pendulum-route-'));
    const cfg = path.join(dir, 'p.yaml');
    fs.writeFileSync(cfg, [
      'providers:',
      '  - { name: home, kind: openai, base_url: "http://127.0.0.1:9/v1", local: true }',
      '  - { name: cloud, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "" }',
      'models: [ { name: llama, provider: home }, { name: gpt-4o, provider: cloud } ]',
      'routes:',
      '  - { name: auto, policy: privacy, pii: { action: local }, local: llama, cloud: gpt-4o }',
    ].join('\n') + '\n');
    const run = (content) => spawnSync(pendulumBin(), ['route', '--config', cfg, '--explain'],
      { input: JSON.stringify(msg('auto', content)), encoding: 'utf8' });
    const pii = run('write to a.b@example.com');
    assert.equal(pii.status, 0, pii.stderr);
    const a = JSON.parse(pii.stdout);
    assert.deepEqual(a.candidates.map((c) => c.model), ['llama']);
    assert.deepEqual(a.pii.types, ['EMAIL']);
    const plain = JSON.parse(run('what is 2+2').stdout);
    assert.equal(plain.candidates[0].model, 'gpt-4o');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
