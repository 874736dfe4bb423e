// llama.mjs: starts and stops the pinned llama.cpp `llama-server` ($LLAMA_PREFIX/bin) with the
// tiny random-weight model ($TINY_MODEL) for the tests that go through a real local server.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './pendulum.mjs';
import { request, sleep } from './http.mjs';

// Why the llama tests cannot run, or null when they can. Only a missing model file is a reason
// to skip (it is produced by `make model`); a missing server binary is an error at start.
export function llamaSkipReason() {
  const model = process.env.TINY_MODEL;
  if (!model) return 'TINY_MODEL is not set (make integration sets it to build/models/tiny.gguf)';
  if (!fs.existsSync(model)) return `TINY_MODEL file ${model} does not exist yet: run \`make model\``;
  return null;
}

export function llamaServerBin() {
  const prefix = process.env.LLAMA_PREFIX;
  if (!prefix) throw new Error('LLAMA_PREFIX is not set (make integration sets it from scripts/llama.sh --prefix)');
  const bin = path.join(prefix, 'bin', 'llama-server');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`${bin} is missing: build it with \`make llama\``);
  }
  return bin;
}

export class LlamaServer {
  constructor(proc, port) {
    this.proc = proc;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.log = '';
    this.exit = null;
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (c) => { this.log += c; });
    proc.stderr.on('data', (c) => { this.log += c; });
    this.exited = new Promise((resolve) => proc.on('close', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); }));
  }

  get alive() { return this.exit === null; }

  tail(n = 30) { return this.log.split('\n').slice(-n).join('\n'); }

  async stop({ killMs = 5000 } = {}) {
    if (!this.alive) return;
    this.proc.kill('SIGTERM');
    const t = await Promise.race([this.exited, sleep(killMs).then(() => null)]);
    if (!t) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

// Starts llama-server on a free port: `--port P --host 127.0.0.1 -c 2048 --alias tiny-local -np 2`
// and waits until GET /health answers 200 (it answers 503 while the model loads).
export async function startLlama({ model = process.env.TINY_MODEL, alias = 'tiny-local', healthMs = 60000 } = {}) {
  const bin = llamaServerBin();
  const port = await freePort();
  const args = ['-m', model, '--port', String(port), '--host', '127.0.0.1', '-c', '2048', '--alias', alias, '-np', '2',
    '-t', '2'];
  const proc = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LD_LIBRARY_PATH: [path.join(path.dirname(path.dirname(bin)), 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
  });
  const s = new LlamaServer(proc, port);
  proc.on('error', (e) => { s.log += `\n[spawn error] ${e.message}\n`; });
  const end = Date.now() + healthMs;
  for (;;) {
    if (!s.alive) throw new Error(`llama-server exited during start-up (code ${s.exit.code}):\n${s.tail()}`);
    try {
      const r = await request(`${s.url}/health`, { timeoutMs: 2000 });
      if (r.status === 200) return s;
    } catch { /* not listening yet */ }
    if (Date.now() > end) {
      await s.stop();
      throw new Error(`llama-server: /health not ok within ${healthMs} ms:\n${s.tail()}`);
    }
    await sleep(100);
  }
}
