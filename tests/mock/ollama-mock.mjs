// ollama-mock.mjs: a mock Ollama server speaking the real native wire formats (protocols.md §4):
// /api/chat (one JSON object, or NDJSON when streaming, which is the default) and /api/embed,
// plus Ollama's OpenAI-compatible /v1/embeddings (for `kind: openai` upstreams), with the same
// control endpoint and fault knobs as openai-mock.mjs.
//
// Module:  const mock = await startMock({port: 0}); ... await mock.close();
//          -> {port, url, close(), control(knob), reset(), requests()}
//          also exported: mockVector(text, dims) (the embedding the mock returns for a text)
// CLI:     node tests/mock/ollama-mock.mjs --port N [--host H]
//          prints "listening PORT" on stdout once bound; SIGTERM/SIGINT close it.
//
// Endpoints
//   POST /api/chat  "stream" defaults to true, as in Ollama: NDJSON (application/x-ndjson), one
//        object per word {"model","created_at","message":{"role":"assistant","content"},
//        "done":false}, then the final object {"done":true,"done_reason","total_duration",
//        "load_duration","prompt_eval_count","prompt_eval_duration","eval_count",
//        "eval_duration"} with empty content. "stream":false: the final object carrying the whole
//        message. Reply: "mock reply to: <last user text>"; options.num_predict cuts it
//        (done_reason "length"; one word = one token). With `tools`: every tool when there are
//        2+, else the one, all in ONE object (Ollama sends tool calls whole), as
//        {"id":"call_<hash>","function":{"index","name","arguments":{OBJECT}}}; done_reason stays
//        "stop" (Ollama does not say "tool_calls"). `format` ("json" or a schema) wraps the
//        reply as {"reply": ...}. Model "missing-model" answers 404 like an unpulled model.
//        Counts: prompt_eval_count = words of all messages + 10, eval_count = words (or, for
//        tool calls, ceil(arguments length / 4)); zero counts are omitted (Go omitempty).
//   POST /api/embed {"model","embeddings":[[...]],"total_duration","load_duration",
//        "prompt_eval_count"}; input: a string or an array of strings; vectors are
//        mockVector(text, dimensions || 8).
//   POST /v1/embeddings  Ollama's OpenAI-compatible shape: {"object":"list","data":[{"object":
//        "embedding","embedding":[...] | base64 (encoding_format "base64"),"index"}],"model",
//        "usage":{"prompt_tokens","total_tokens"}}; errors in OpenAI's shape.
//   POST /__control, POST /__reset, GET /__requests: as in openai-mock.mjs.
//
// Validation (as strict as Ollama where translation mistakes would hide): model a string;
// messages an array of objects with role system|user|assistant|tool and a string content;
// images an array of raw base64 strings (a data: URI is refused, as Ollama refuses it);
// tool_calls[].function.arguments an OBJECT (a string gets Ollama's own unmarshal error);
// options an object of known option names with the right types; format "json" or an object;
// stream, think, logprobs booleans (think may be a level string). Errors: {"error":"..."}.
//
// Knob fields (all optional). A knob applies to the next `count` (default 1) requests whose path
// equals `path` (default "/api/chat") and that pass validation; knobs are used in order.
//   status, error, body   answer with this status; body verbatim when given, else
//                         {"error": error || a default for the status}
//   headers, latency_ms, ttfb_ms, drip_ms, chunks, hang   as in openai-mock.mjs
//   cut_after             destroy the socket after N NDJSON lines (0: right after the headers)
//   malformed_at          line N (1-based) is not JSON; the stream goes on
//   error_at              line N is {"error": error || a default}, and the response ends there
//                         (status stays 200, as Ollama does mid-stream)
// Lines are counted from 1 and include the final done:true object.

import { listen, runCli } from './serve.mjs';
import { createHash } from 'node:crypto';

const MAX_BODY = 64 * 1024 * 1024;
const CREATED = '2025-01-02T03:04:05.123456789Z';

const DEFAULT_ERRORS = {
  400: 'invalid request (mock)',
  404: 'model "missing-model" not found, try pulling it first',
  429: 'too many requests (mock)',
  500: 'an error was encountered while running the model: unexpected EOF',
  503: 'server busy, please try again.  maximum pending requests exceeded',
};

const OPTIONS = {
  num_predict: 'int', temperature: 'num', top_p: 'num', top_k: 'int', min_p: 'num', stop: 'strings',
  seed: 'int', frequency_penalty: 'num', presence_penalty: 'num', num_ctx: 'int',
  repeat_penalty: 'num', repeat_last_n: 'int', typical_p: 'num', num_keep: 'int',
};
const ROLES = new Set(['system', 'user', 'assistant', 'tool']);
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function defaultError(status) {
  return DEFAULT_ERRORS[status] ?? (status >= 500 ? DEFAULT_ERRORS[500] : DEFAULT_ERRORS[400]);
}

const hash = (s) => createHash('sha1').update(s).digest('hex');

// The embedding of a text: dyadic values (k/1024), exact in float32 and short in JSON, so a
// client can compare what it got through any encoding with this, exactly.
export function mockVector(text, dims = 8) {
  const h = createHash('sha256').update(text).digest();
  const v = [];
  for (let i = 0; i < dims; i++) v.push((((h[i % 32] << 8) | h[(i * 7 + 3) % 32]) % 2001 - 1000) / 1024);
  return v;
}

// ---- validation ----------------------------------------------------------------------------

function optionError(k, v) {
  const t = OPTIONS[k];
  if (!t) return `invalid option provided: ${k}`;
  const ok = t === 'int' ? Number.isInteger(v) : t === 'num' ? typeof v === 'number'
    : Array.isArray(v) && v.every((s) => typeof s === 'string');
  return ok ? null : `option "${k}" must be of type ${t === 'strings' ? 'array of strings' : t === 'int' ? 'integer' : 'float32'}`;
}

function validateChat(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'invalid request body';
  if (typeof body.model !== 'string' || !body.model) return 'model is required';
  if (!Array.isArray(body.messages)) return 'json: cannot unmarshal into Go struct field ChatRequest.messages of type []api.Message';
  for (const m of body.messages) {
    if (!m || typeof m !== 'object' || !ROLES.has(m.role)) return 'invalid role';
    if (m.content !== undefined && typeof m.content !== 'string') return 'json: cannot unmarshal array into Go struct field Message.messages.content of type string';
    if (m.images !== undefined) {
      if (!Array.isArray(m.images) || m.images.some((i) => typeof i !== 'string' || !B64.test(i))) return 'illegal base64 data at input byte 4';
    }
    if (m.tool_calls !== undefined) {
      if (!Array.isArray(m.tool_calls)) return 'json: cannot unmarshal into Go struct field Message.messages.tool_calls';
      for (const tc of m.tool_calls) {
        const a = tc && tc.function && tc.function.arguments;
        if (!a || typeof a !== 'object' || Array.isArray(a)) return 'Value looks like object, but can\'t find closing \'}\' symbol';
      }
    }
  }
  if (body.options !== undefined) {
    if (!body.options || typeof body.options !== 'object' || Array.isArray(body.options)) return 'options must be an object';
    for (const [k, v] of Object.entries(body.options)) {
      const e = optionError(k, v);
      if (e) return e;
    }
  }
  if (body.format !== undefined && body.format !== 'json' && (typeof body.format !== 'object' || body.format === null)) return 'invalid format';
  if (body.stream !== undefined && typeof body.stream !== 'boolean') return 'stream must be a boolean';
  if (body.think !== undefined && typeof body.think !== 'boolean' && !['low', 'medium', 'high'].includes(body.think)) return 'invalid think value';
  return null;
}

function inputsOf(body) {
  if (typeof body.input === 'string') return [body.input];
  if (Array.isArray(body.input) && body.input.every((s) => typeof s === 'string')) return body.input;
  return null;
}

// ---- the answer -----------------------------------------------------------------------------

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return messages[i].content ?? '';
  return '';
}

function words(s) {
  const t = (s ?? '').trim();
  return t ? t.split(/\s+/).length : 0;
}

function exampleValue(name, schema) {
  switch (schema && schema.type) {
    case 'integer': return 7;
    case 'number': return 1.5;
    case 'boolean': return true;
    case 'array': return [];
    case 'object': return {};
    default:
      if (schema && Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
      return `mock-${name}`;
  }
}

function toolCalls(body) {
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => t && t.function && t.function.name) : [];
  const chosen = tools.length >= 2 ? tools : tools.slice(0, 1);
  const user = lastUserText(body.messages);
  return chosen.map((t, i) => {
    const props = (t.function.parameters && t.function.parameters.properties) || {};
    const args = {};
    for (const [k, s] of Object.entries(props)) args[k] = exampleValue(k, s);
    return { id: 'call_' + hash(`${i}\0${t.function.name}\0${user}`).slice(0, 8),
      function: { index: i, name: t.function.name, arguments: args } };
  });
}

function plan(body, knob) {
  const calls = toolCalls(body);
  let pieces = [];
  let reason = 'stop';
  if (!calls.length) {
    let text = 'mock reply to: ' + lastUserText(body.messages);
    if (body.format !== undefined) text = JSON.stringify({ reply: text });
    pieces = text.split(' ').filter((w) => w !== '').map((w, i) => (i ? ' ' + w : w));
    if (knob && Number.isInteger(knob.chunks) && knob.chunks > 0) {
      const want = knob.chunks;
      if (pieces.length > want) pieces = pieces.slice(0, want - 1).concat(pieces.slice(want - 1).join(''));
      for (let i = pieces.length; i < want; i++) pieces.push(` w${i}`);
    }
    const limit = body.options && body.options.num_predict;
    if (Number.isInteger(limit) && limit >= 0 && pieces.length > limit) {
      pieces = pieces.slice(0, limit);
      reason = 'length';
    }
  }
  const prompt = body.messages.reduce((n, m) => n + words(m.content), 0) + 10;
  const evalCount = calls.length ? calls.reduce((n, c) => n + Math.ceil(JSON.stringify(c.function.arguments).length / 4), 0) : pieces.length;
  return { calls, pieces, reason, prompt, evalCount, model: body.model };
}

// The final object; `message` is the whole reply (non-streaming) or an empty one (streams).
function finalObject(p, message) {
  const o = { model: p.model, created_at: CREATED, message, done: true, done_reason: p.reason,
    total_duration: 123456789, load_duration: 1234567 };
  if (p.prompt) o.prompt_eval_count = p.prompt;
  o.prompt_eval_duration = 2345678;
  if (p.evalCount) o.eval_count = p.evalCount;
  o.eval_duration = 3456789;
  return JSON.stringify(o);
}

function streamLines(p) {
  const lines = [];
  const line = (message) => lines.push(JSON.stringify({ model: p.model, created_at: CREATED, message, done: false }));
  if (p.calls.length) line({ role: 'assistant', content: '', tool_calls: p.calls });
  for (const w of p.pieces) line({ role: 'assistant', content: w });
  lines.push(finalObject(p, { role: 'assistant', content: '' }));
  return lines;
}

function wholeMessage(p) {
  const m = { role: 'assistant', content: p.pieces.join('') };
  if (p.calls.length) m.tool_calls = p.calls;
  return m;
}

function b64floats(v) {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeFloatLE(x, 4 * i));
  return b.toString('base64');
}

// ---- the server -------------------------------------------------------------------------

export async function startMock(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const logCap = opts.logCap ?? 10000;
  let log = [];
  let knobs = [];
  let seq = 0;
  const timers = new Set();
  let closed = false;

  function takeKnob(path) {
    const i = knobs.findIndex((k) => (k.path ?? '/api/chat') === path);
    if (i < 0) return null;
    const k = knobs[i];
    k.remaining -= 1;
    if (k.remaining <= 0) knobs.splice(i, 1);
    return k;
  }

  function addKnobs(v) {
    const list = Array.isArray(v) ? v : [v];
    for (const k of list) {
      if (!k || typeof k !== 'object') throw new Error('a knob is a JSON object');
      knobs.push({ ...k, remaining: Number.isInteger(k.count) && k.count > 0 ? k.count : 1 });
    }
  }

  function record(entry) {
    log.push(entry);
    if (log.length > logCap) log = log.slice(log.length - Math.floor(logCap / 2));
  }

  function sleep(ms, res) {
    if (!ms || ms <= 0 || res.destroyed || closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); timers.delete(entry); res.off('close', done); resolve(); };
      const t = setTimeout(done, ms);
      const entry = { done };
      timers.add(entry);
      res.once('close', done);
    });
  }

  function sendJSON(res, status, text, extra = {}) {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...extra });
    res.end(text);
  }

  const errorText = (error) => JSON.stringify({ error });
  const openaiError = (message, type) => JSON.stringify({ error: { message, type, param: null, code: null } });

  async function answerChat(res, entry, body, knob) {
    const hdrs = knob && knob.headers ? knob.headers : {};
    if (knob && knob.hang) return;
    if (knob && knob.latency_ms) await sleep(knob.latency_ms, res);
    if (res.destroyed) return;
    if (knob && (knob.status || knob.body !== undefined)) {
      const status = knob.status || 200;
      const text = knob.body !== undefined
        ? (typeof knob.body === 'string' ? knob.body : JSON.stringify(knob.body))
        : errorText(knob.error ?? defaultError(status));
      entry.status = status;
      return sendJSON(res, status, text, hdrs);
    }
    entry.status = 200;
    const p = plan(body, knob);
    if (body.stream === false) {
      const text = finalObject(p, wholeMessage(p));
      if (!knob) return sendJSON(res, 200, text, hdrs);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...hdrs });
      res.flushHeaders();
      await sleep(knob.ttfb_ms, res);
      if (Number.isInteger(knob.cut_after)) {
        entry.cut = true;
        return res.write(text.slice(0, knob.cut_after), () => res.socket && res.socket.destroy());
      }
      return res.end(text);
    }
    const lines = streamLines(p);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', ...hdrs });
    if (!knob) return res.end(lines.map((l) => l + '\n').join(''));
    res.flushHeaders();
    await sleep(knob.ttfb_ms, res);
    if (knob.cut_after === 0) {
      entry.cut = true;
      return res.socket && res.socket.destroy();
    }
    for (let i = 0; i < lines.length; i++) {
      const n = i + 1;
      if (res.destroyed) return;
      if (i > 0) await sleep(knob.drip_ms, res);
      if (res.destroyed) return;
      if (n === knob.error_at) return res.end(errorText(knob.error ?? defaultError(500)) + '\n');
      const text = (n === knob.malformed_at ? '{"model":"x","message":{"content":"tr' : lines[i]) + '\n';
      if (n === knob.cut_after) {
        entry.cut = true;
        return res.write(text, () => res.socket && res.socket.destroy());
      }
      res.write(text);
    }
    res.end();
  }

  function answerEmbed(res, entry, body, path, knob) {
    const openai = path === '/v1/embeddings';
    if (knob && (knob.status || knob.body !== undefined)) {
      const status = knob.status || 200;
      const text = knob.body !== undefined ? (typeof knob.body === 'string' ? knob.body : JSON.stringify(knob.body))
        : openai ? openaiError(knob.error ?? defaultError(status), status >= 500 ? 'api_error' : 'invalid_request_error')
          : errorText(knob.error ?? defaultError(status));
      entry.status = status;
      return sendJSON(res, status, text, knob.headers ?? {});
    }
    const inputs = inputsOf(body);
    const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : 8;
    const vectors = inputs.map((t) => mockVector(t, dims));
    const tokens = inputs.reduce((n, t) => n + Math.max(1, words(t)), 0);
    entry.status = 200;
    if (!openai) {
      return sendJSON(res, 200, JSON.stringify({ model: body.model, embeddings: vectors,
        total_duration: 14143917, load_duration: 1019500, prompt_eval_count: tokens }));
    }
    const b64 = body.encoding_format === 'base64';
    return sendJSON(res, 200, JSON.stringify({ object: 'list',
      data: vectors.map((v, index) => ({ object: 'embedding', embedding: b64 ? b64floats(v) : v, index })),
      model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }

  function handleControl(req, res, raw) {
    const path = req.url.split('?')[0];
    if (path === '/__control' && req.method === 'POST') {
      try {
        addKnobs(JSON.parse(raw.toString('utf8') || '{}'));
      } catch (e) {
        return sendJSON(res, 400, errorText(`bad knob: ${e.message}`));
      }
      return sendJSON(res, 200, JSON.stringify({ ok: true, queued: knobs.length }));
    }
    if (path === '/__reset' && req.method === 'POST') {
      knobs = [];
      log = [];
      return sendJSON(res, 200, '{"ok":true}');
    }
    if (path === '/__requests' && req.method === 'GET') return sendJSON(res, 200, JSON.stringify(log));
    return sendJSON(res, 404, '404 page not found');
  }

  function handle(req, res, raw) {
    const path = req.url.split('?')[0];
    if (path.startsWith('/__')) return handleControl(req, res, raw);
    const entry = {
      seq: ++seq, method: req.method, path: req.url, headers: req.headers, body: null,
      received_at: Date.now(), finished_at: null, status: null, aborted: false, aborted_at: null, cut: false,
    };
    const text = raw.length ? raw.toString('utf8') : '';
    let body = null;
    if (text) {
      try { body = JSON.parse(text); } catch { body = undefined; }
    }
    entry.body = body === undefined ? text : body;
    record(entry);
    res.on('finish', () => { entry.finished_at = Date.now(); });
    res.on('close', () => {
      if (!res.writableFinished && !entry.cut) {
        entry.aborted = true;
        entry.aborted_at = Date.now();
      }
    });
    const send = (status, t) => { entry.status = status; sendJSON(res, status, t); };
    const known = path === '/api/chat' || path === '/api/embed' || path === '/v1/embeddings';
    if (!known) {
      entry.status = 404;
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return res.end('404 page not found');
    }
    const openai = path === '/v1/embeddings';
    const fail = (status, msg) => send(status, openai ? openaiError(msg, 'invalid_request_error') : errorText(msg));
    if (req.method !== 'POST') return fail(405, 'method not allowed');
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) return fail(400, 'unexpected EOF');
    if (path === '/api/chat') {
      const problem = validateChat(body);
      if (problem) return fail(400, problem);
    } else if (typeof body.model !== 'string' || !inputsOf(body)) {
      return fail(400, openai ? 'invalid input type' : 'invalid input type');
    }
    if (body.model === 'missing-model') return fail(404, defaultError(404));
    const knob = takeKnob(path);
    if (path !== '/api/chat') return answerEmbed(res, entry, body, path, knob);
    answerChat(res, entry, body, knob).catch((e) => {
      if (!res.headersSent) send(500, errorText(`mock failure: ${e.message}`));
      else res.destroy();
    });
  }

  const server = await listen(host, opts.port ?? 0, MAX_BODY, handle);
  const port = server.address().port;

  return {
    port,
    url: `http://${host}:${port}`,
    server,
    control(k) { addKnobs(k); },
    reset() { knobs = []; log = []; },
    requests() { return log; },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of [...timers]) t.done();
      await new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// ---- CLI --------------------------------------------------------------------------------

function parseArgs(argv) {
  const o = { port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') o.port = Number(argv[++i]);
    else if (a === '--host') o.host = argv[++i];
    else throw new Error(`unknown argument ${a} (usage: ollama-mock.mjs --port N [--host H])`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port must be 0..65535');
  return o;
}

await runCli('ollama-mock', import.meta.url, startMock, parseArgs);
