// http.mjs: small HTTP, SSE and raw-TCP clients for the integration tests, plus the mock's control
// endpoint. Everything is bounded by a timeout; nothing here retries.

import http from 'node:http';
import net from 'node:net';

const DEFAULT_TIMEOUT = 10000;

// One HTTP request. `body`: string, Buffer, or any other value (sent as JSON).
// Resolves {status, headers, text, json (or undefined), reusedSocket, localPort}.
export function request(url, { method = 'GET', headers = {}, body, agent, timeoutMs = DEFAULT_TIMEOUT } = {}) {
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    headers = { 'content-type': 'application/json', ...headers };
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: agent ?? false }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json,
          reusedSocket: req.reusedSocket, localPort: req.socket && req.socket.localPort });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(payload);
  });
}

export const postJSON = (url, body, opts = {}) => request(url, { ...opts, method: 'POST', body });

// Incremental SSE parser following the WHATWG rules (protocols.md §0.2): lines end in \n, \r\n
// or \r; one optional space after the colon; data lines are joined with \n; comments ignored.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.data = [];
    this.event = null;
  }
  push(text) {
    this.buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) return;
      // a lone \r at the very end may be the first half of \r\n: wait for more
      if (m[0] === '\r' && m.index === this.buf.length - 1) return;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }
  line(line) {
    if (line === '') {
      if (this.data.length) this.onEvent({ event: this.event, data: this.data.join('\n') });
      this.data = [];
      this.event = null;
      return;
    }
    if (line.startsWith(':')) return;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
  }
}

// POSTs a streaming request and collects the SSE events with their arrival times (ms since the
// request was sent). `onEvent(ev, ctx)` may call ctx.abort() to close the connection early.
// Resolves {status, headers, events:[{data, json, t}], raw, end: 'complete'|'aborted'|'error',
// error, t0 (Date.now() at send), closedAt (Date.now() when we aborted)}.
export function streamSSE(url, body, { headers = {}, onEvent, timeoutMs = DEFAULT_TIMEOUT, agent } = {}) {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const out = { status: 0, headers: {}, events: [], raw: '', end: null, error: null, t0, closedAt: null };
    let settled = false;
    const finish = (end, err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.end = end;
      out.error = err ?? null;
      resolve(out);
    };
    const req = http.request(url, { method: 'POST', agent: agent ?? false,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers } }, (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      res.setEncoding('utf8');
      const ctx = {
        abort() {
          out.closedAt = Date.now();
          req.destroy();
          finish('aborted');
        },
      };
      const parser = new SSEParser((ev) => {
        let json;
        try { json = JSON.parse(ev.data); } catch { json = undefined; }
        const e = { data: ev.data, json, event: ev.event, t: Date.now() - t0 };
        out.events.push(e);
        if (onEvent && !settled) onEvent(e, ctx);
      });
      res.on('data', (c) => { out.raw += c; parser.push(c); });
      res.on('end', () => finish('complete'));
      res.on('error', (e) => finish('error', e));
      res.on('aborted', () => finish('error', new Error('response aborted')));
      res.on('close', () => finish(res.complete ? 'complete' : 'error', res.complete ? null : new Error('connection closed before the response completed')));
    });
    const timer = setTimeout(() => {
      if (settled) return;
      req.destroy();
      reject(new Error(`stream ${url}: not finished within ${timeoutMs} ms (${out.events.length} events so far)`));
      settled = true;
    }, timeoutMs);
    req.on('error', (e) => {
      if (out.status) finish(out.end ?? 'error', e);
      else if (!settled) { settled = true; clearTimeout(timer); reject(e); }
    });
    req.end(payload);
  });
}

// Opens a raw TCP connection, writes `bytes` (string or Buffer, may be empty), and collects what
// comes back until the server closes or timeoutMs passes. Resolves {text, closed, ms, error}.
export function rawExchange(port, bytes, { timeoutMs = 5000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const parts = [];
    const sock = net.connect({ port, host });
    let done = false;
    const finish = (closed, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(parts).toString('latin1'), closed, ms: Date.now() - t0, error: error ?? null });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('connect', () => { if (bytes && bytes.length) sock.write(bytes); });
    sock.on('data', (c) => parts.push(c));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => finish(true, e));
  });
}

// Status code of the first HTTP response in a raw byte string, or 0.
export function rawStatus(text) {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}

// Attempts a TCP connect; resolves 'connected' | 'refused' | the error code.
export function tryConnect(port, { host = '127.0.0.1', timeoutMs = 1000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, timeoutMs);
    s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
    s.on('error', (e) => { clearTimeout(timer); resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code || e.message); });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() until it returns a truthy value; throws after timeoutMs with `what` in the message.
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : ''));
    }
    await sleep(intervalMs);
  }
}

// ---- the mock's control endpoint ---------------------------------------------------------

export async function mockControl(mockUrl, knob) {
  const r = await postJSON(`${mockUrl}/__control`, knob);
  if (r.status !== 200) throw new Error(`mock /__control: ${r.status} ${r.text}`);
}

export async function mockReset(mockUrl) {
  const r = await request(`${mockUrl}/__reset`, { method: 'POST' });
  if (r.status !== 200) throw new Error(`mock /__reset: ${r.status}`);
}

export async function mockRequests(mockUrl) {
  const r = await request(`${mockUrl}/__requests`);
  if (r.status !== 200) throw new Error(`mock /__requests: ${r.status}`);
  return r.json;
}

// The chat completion requests the mock received (not /v1/models and the like).
export async function mockChatRequests(mockUrl) {
  return (await mockRequests(mockUrl)).filter((e) => e.path.split('?')[0] === '/v1/chat/completions');
}

// ---- assertions on OpenAI error bodies ----------------------------------------------------

// Asserts `r` is an OpenAI-shaped error: {"error":{"message","type","param","code"}}.
export function assertOpenAIError(assert, r, status, { type, code } = {}) {
  assert.equal(r.status, status, `status (body: ${r.text.slice(0, 300)})`);
  assert.match(String(r.headers['content-type']), /^application\/json/, 'content-type');
  assert.ok(r.json && typeof r.json === 'object', `JSON body, got: ${r.text.slice(0, 300)}`);
  const e = r.json.error;
  assert.ok(e && typeof e === 'object', `"error" object, got: ${r.text.slice(0, 300)}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, 'error.message is not empty');
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e, 'error.param present (may be null)');
  assert.ok('code' in e, 'error.code present (may be null)');
  if (type !== undefined) assert.equal(e.type, type, 'error.type');
  if (code !== undefined) assert.equal(e.code, code, 'error.code');
}
