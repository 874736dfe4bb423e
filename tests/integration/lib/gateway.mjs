// gateway.mjs: the usual fixture of a test file: one in-process mock upstream plus one real
// pendulum in front of it, started in before(), stopped (and checked for a clean exit) in after().
// The mock is reset before each test; after each test pendulum must still be running and answer
// GET /healthz (the server keeps serving after every input a test threw at it).

import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../mock/openai-mock.mjs';
import { startPendulum, mockProviders, MOCK_MODELS, freePort } from './pendulum.mjs';
import { request } from './http.mjs';

// opts: {apiKeys, upstreamKey, limits, upstream, extraProviders(ctx), extraModels, deadProvider, extra}
// extra: YAML text appended to the config (e.g. `breaker: {...}`).
// deadProvider: adds provider "dead" (base_url on a port nobody listens on) and model "dead-model".
// Returns ctx, filled in before(): {mock, pd, url, mockUrl, deadPort}.
export function useGateway(opts = {}) {
  const ctx = {};
  before(async () => {
    ctx.mock = await startMock({ port: 0 });
    ctx.mockUrl = ctx.mock.url;
    const providers = mockProviders(ctx.mock.port, opts.upstreamKey ?? 'upstream-key');
    const models = [...MOCK_MODELS, ...(opts.extraModels ?? [])];
    if (opts.deadProvider) {
      ctx.deadPort = await freePort();
      providers.push({ name: 'dead', kind: 'openai', base_url: `http://127.0.0.1:${ctx.deadPort}/v1`, api_key: 'dead-key' });
      models.push({ name: 'dead-model', provider: 'dead' });
    }
    ctx.pd = await startPendulum({
      apiKeys: opts.apiKeys, limits: opts.limits, upstream: opts.upstream, providers, models, extra: opts.extra,
    });
    ctx.url = ctx.pd.url;
  }, { timeout: 20000 });

  after(async () => {
    try {
      if (ctx.pd) await ctx.pd.stop();
    } finally {
      if (ctx.mock) await ctx.mock.close();
    }
  }, { timeout: 15000 });

  beforeEach(() => { if (ctx.mock) ctx.mock.reset(); });

  afterEach(async () => {
    if (!ctx.pd || ctx.pd.stopped) return;
    ctx.pd.checkAlive();
    const h = await request(`${ctx.url}/healthz`, { timeoutMs: 3000 });
    assert.equal(h.status, 200, 'pendulum still serves GET /healthz after the test');
  }, { timeout: 5000 });

  return ctx;
}

// Registers, at the point of the call (so: last in a describe), a test that stops pendulum with
// SIGTERM and fails unless it exits 0 without a sanitizer report. after() then has nothing to stop.
// `then(pd)`, when given, runs afterwards with the stopped process (its whole output captured).
export function testCleanExit(ctx, then) {
  test('pendulum exits 0 on SIGTERM with no sanitizer report', { timeout: 10000 }, async () => {
    assert.ok(ctx.pd, 'pendulum was started');
    const pd = ctx.pd;
    await pd.stop();
    assert.deepEqual(pd.exit, { code: 0, signal: null });
    if (then) await then(pd);
  });
}

export const chat = (content, extra = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content }], ...extra });

export const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Time in a zone',
    parameters: { type: 'object', properties: { zone: { type: 'string' } } } } },
];

// A chunk with its volatile `id` blanked, for comparing relayed output with the mock's own.
export function sansId(o) {
  return o && typeof o === 'object' && !Array.isArray(o) && 'id' in o ? { ...o, id: '' } : o;
}

// Concatenated delta.content of a list of parsed chunks.
export function contentOf(events) {
  return events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');
}
