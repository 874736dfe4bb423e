// pendulum.mjs: starts and stops the real `pendulum` binary ($PENDULUM_BIN, the ASan+UBSan build)
// for a test file: writes a YAML config into a temp dir, spawns `pendulum serve --config FILE`
// on a free port, captures stdout/stderr, waits for GET /healthz to answer 200, and on stop
// checks that it exited 0 and printed no sanitizer report.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { request, sleep } from './http.mjs';

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)|runtime error: |LeakSanitizer has encountered/;

export function pendulumBin() {
  const bin = process.env.PENDULUM_BIN;
  if (!bin) throw new Error('PENDULUM_BIN is not set: run through `make integration`, or set it to build/asan/pendulum');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`PENDULUM_BIN=${bin} is not an executable file: build it first (make build/asan/pendulum)`);
  }
  return bin;
}

// A port that was free a moment ago (bind 0, read, close).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- config ---------------------------------------------------------------------------------

const SIZE_RE = /^\d+(\.\d+)?\s?(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)$/;

function scalar(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (typeof v === 'string' && SIZE_RE.test(v)) return v; // sizes stay plain: 1MiB
  return JSON.stringify(String(v)); // a JSON string is a valid YAML double-quoted scalar
}

function flowMap(o) {
  const value = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? flowMap(v) : scalar(v));
  return '{ ' + Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${value(v)}`).join(', ') + ' }';
}

export const DEFAULT_LIMITS = {
  max_body_bytes: '1MiB', max_headers: 50, read_timeout_ms: 2000, idle_timeout_ms: 5000, shutdown_grace_ms: 3000,
};
export const DEFAULT_UPSTREAM = { connect_ms: 1000, ttfb_ms: 2000, idle_ms: 1000, total_ms: 10000 };

// The standard test providers/models: provider "mock" at the mock, models gpt-4o and renamed.
export function mockProviders(mockPort, apiKey = 'upstream-key') {
  return [{ name: 'mock', kind: 'openai', base_url: `http://127.0.0.1:${mockPort}/v1`, api_key: apiKey }];
}
export const MOCK_MODELS = [
  { name: 'gpt-4o', provider: 'mock' },
  { name: 'renamed', provider: 'mock', upstream_model: 'real-name' },
];

// Builds the YAML text (the shape documented in the brief).
export function configYaml({ port, apiKeys, workers = 2, limits = {}, upstream = {}, providers, models, extra = '', ledger }) {
  const lines = [`listen: 127.0.0.1:${port}`];
  if (ledger) lines.push(`ledger: ${JSON.stringify(ledger)}`);
  if (apiKeys) lines.push(`api_keys: [${apiKeys.map((k) => JSON.stringify(k)).join(', ')}]`);
  lines.push(`workers: ${workers}`);
  lines.push(`limits: ${flowMap({ ...DEFAULT_LIMITS, ...limits })}`);
  lines.push(`upstream: ${flowMap({ ...DEFAULT_UPSTREAM, ...upstream })}`);
  lines.push('providers:');
  for (const p of providers) lines.push(`  - ${flowMap(p)}`);
  lines.push('models:');
  for (const m of models) lines.push(`  - ${flowMap(m)}`);
  if (extra) lines.push(extra);
  // Most suites break upstreams on purpose, many times: a circuit opened by an earlier test would
  // turn a later one's answer into a 503. Tests of the breaker itself set `breaker:` in `extra`.
  if (!/^breaker:/m.test(extra)) lines.push('breaker: { failures: 1000 }');
  return lines.join('\n') + '\n';
}

// ---- the process ----------------------------------------------------------------------------

export class Pendulum {
  constructor(proc, port, dir, configText) {
    this.proc = proc;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.dir = dir;
    this.config = configText;
    this.stderrText = '';
    this.stdoutText = '';
    this.exit = null; // {code, signal} once exited
    this.stopped = false; // stop() was called
    proc.stderr.setEncoding('utf8');
    proc.stdout.setEncoding('utf8');
    proc.stderr.on('data', (c) => { this.stderrText += c; });
    proc.stdout.on('data', (c) => { this.stdoutText += c; });
    // 'close' (not 'exit'): all of stderr has been read by then
    this.exited = new Promise((resolve) => {
      proc.on('close', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
    });
  }

  get alive() { return this.exit === null; }

  // The per-request JSON lines (lines of stderr that parse as objects with a status).
  requestLogs() {
    const out = [];
    for (const line of this.stderrText.split('\n')) {
      const t = line.trim();
      if (!t.startsWith('{')) continue;
      try {
        const o = JSON.parse(t);
        if (o && typeof o === 'object' && 'status' in o) out.push(o);
      } catch { /* not a JSON line */ }
    }
    return out;
  }

  tail(n = 40) {
    return this.stderrText.split('\n').slice(-n).join('\n');
  }

  sanitizerReport() {
    const m = SANITIZER_RE.exec(this.stderrText);
    return m ? this.stderrText.slice(Math.max(0, m.index - 200), m.index + 3000) : null;
  }

  // Throws when the process exited non-zero / by a signal, or wrote a sanitizer report.
  checkClean() {
    const rep = this.sanitizerReport();
    if (rep) throw new Error(`pendulum wrote a sanitizer report:\n${rep}`);
    if (this.exit && (this.exit.code !== 0 || this.exit.signal)) {
      throw new Error(`pendulum exited with code ${this.exit.code} signal ${this.exit.signal}; stderr tail:\n${this.tail()}`);
    }
  }

  // Throws unless the process is still running.
  checkAlive() {
    if (!this.alive) {
      throw new Error(`pendulum is not running (code ${this.exit.code} signal ${this.exit.signal}); stderr tail:\n${this.tail()}`);
    }
  }

  // SIGTERM, then SIGKILL after killMs. Throws when it had to be killed, exited non-zero, or
  // wrote a sanitizer report. Always removes the temp dir.
  async stop({ killMs = 5000 } = {}) {
    if (this.stopped) return;
    this.stopped = true;
    try {
      if (this.alive) {
        this.proc.kill('SIGTERM');
        const t = await Promise.race([this.exited, sleep(killMs).then(() => null)]);
        if (!t) {
          this.proc.kill('SIGKILL');
          await this.exited;
          throw new Error(`pendulum did not exit within ${killMs} ms of SIGTERM; stderr tail:\n${this.tail()}`);
        }
      }
      this.checkClean();
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// Starts pendulum with the given config pieces (see configYaml; `port` is chosen here).
// Resolves once GET /healthz answers 200 (timeout healthMs). Retries once on a port clash.
export async function startPendulum(opts = {}, { healthMs = 10000, env = {} } = {}) {
  const bin = pendulumBin();
  let lastErr;
  for (let attempt = 0; attempt < 2; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pendulum-it-'));
    // Each instance keeps its ledger in its own directory (never the user's default file).
    const text = configYaml({ ledger: `sqlite://${path.join(dir, 'ledger.db')}`, ...opts, port });
    const cfg = path.join(dir, 'pendulum.yaml');
    fs.writeFileSync(cfg, text);
    const proc = spawn(bin, ['serve', '--config', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const p = new Pendulum(proc, port, dir, text);
    proc.on('error', (e) => { p.stderrText += `\n[spawn error] ${e.message}\n`; });
    try {
      await waitHealthy(p, healthMs);
      return p;
    } catch (e) {
      lastErr = e;
      if (p.alive) { proc.kill('SIGKILL'); await p.exited; }
      fs.rmSync(dir, { recursive: true, force: true });
      if (!/address already in use|EADDRINUSE/i.test(p.stderrText)) break;
    }
  }
  throw lastErr;
}

async function waitHealthy(p, healthMs) {
  const end = Date.now() + healthMs;
  for (;;) {
    if (!p.alive) {
      throw new Error(`pendulum exited during start-up (code ${p.exit.code} signal ${p.exit.signal})\n` +
        `config:\n${p.config}\nstderr:\n${p.tail(60)}`);
    }
    try {
      const r = await request(`${p.url}/healthz`, { timeoutMs: 1000 });
      if (r.status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() > end) {
      throw new Error(`pendulum: GET /healthz did not answer 200 within ${healthMs} ms\nconfig:\n${p.config}\nstderr:\n${p.tail(60)}`);
    }
    await sleep(50);
  }
}
