// anthropic-mock.mjs: a mock Anthropic upstream that speaks the real Messages wire format
// (protocols.md §2.5 non-streaming, §2.6 SSE event stream with ping, §2.7 errors), with the same
// control endpoint and fault knobs as openai-mock.mjs.
//
// Module:  const mock = await startMock({port: 0, apiKey: 'k'}); ... await mock.close();
//          -> {port, url ('http://127.0.0.1:PORT'), close(), control(knob), reset(), requests()}
// CLI:     node tests/mock/anthropic-mock.mjs --port N [--host H] [--api-key KEY]
//          prints "listening PORT" on stdout once bound; SIGTERM/SIGINT close it.
//
// Endpoints
//   POST /v1/messages   a Message, or its event stream with "stream":true. Requires the
//        anthropic-version header (400 otherwise) and, with apiKey set, `x-api-key: <apiKey>` or
//        `Authorization: Bearer <apiKey>` (what SDKs for API version 2026-10-21 send; 401
//        authentication_error otherwise). The reply is deterministic: "mock reply to: <last
//        user text>", one text_delta per word; max_tokens cuts it (stop_reason "max_tokens", one
//        word = one token); a stop_sequences entry found in it cuts it there (stop_reason
//        "stop_sequence", stop_sequence set). With `tools` (and tool_choice not none) it answers
//        with tool_use blocks instead, after a short text block (none when tool_choice is any or
//        tool: the real API prefills a forced call): every tool when there are 2+ and
//        disable_parallel_tool_use is not set, else the first (or the one tool_choice names).
//        Inputs are built from each tool's input_schema properties and streamed as
//        input_json_delta fragments (the first one "", as the real API does). With
//        thinking.type "enabled" a thinking block comes first (thinking_delta per word, then a
//        signature_delta). `model` is echoed. Usage: input_tokens from the words of the
//        messages, cache counts from the knobs below, output_tokens = pieces produced.
//   GET  /v1/models     Anthropic's list shape.
//   POST /__control     queue a fault knob (JSON object, or an array of them), see below.
//   POST /__reset       clear knobs and the request log.
//   GET  /__requests    JSON array: the log of every non-control request received.
//
// Stream shape: message_start (usage with input and cache counts, output_tokens 1),
// content_block_start, ping (right after the first content_block_start, like the real API),
// deltas, content_block_stop per block, message_delta (stop_reason, usage {output_tokens}),
// message_stop. No [DONE]: message_stop ends it.
//
// Knob fields (all optional). A knob applies to the next `count` (default 1) requests whose path
// equals `path` (default "/v1/messages"); knobs are used in the order queued.
//   status, error, body   answer with this HTTP status; the body is `body` verbatim when given,
//                         else {"type":"error","error": error || the default for the status,
//                         "request_id"}; 529 is overloaded_error
//   headers               extra response headers (e.g. {"retry-after": "7"}), on any answer
//   latency_ms, ttfb_ms, drip_ms, chunks, cut_after, malformed_at, hang: as in openai-mock.mjs
//   error_event_at        SSE event N is `event: error` with {"type":"error","error":...}
//                         (knob `error` or overloaded_error) and the response ends there,
//                         cleanly, without message_stop: the streaming counterpart of a 529
//   cache_read, cache_write   cache_read_input_tokens / cache_creation_input_tokens to report
//   delta_usage           message_delta.usage carries every count (cumulative), not only
//                         output_tokens
// SSE events are counted from 1 and include message_start, pings, and message_stop.
//
// Request log entries: as in openai-mock.mjs {seq, method, path, headers, body, received_at,
// finished_at, status, aborted, aborted_at, cut}.

import { listen, runCli } from './serve.mjs';
import { createHash } from 'node:crypto';

const MAX_BODY = 64 * 1024 * 1024;
const DEFAULT_MODELS = ['claude-mock', 'claude-real-name'];

const DEFAULT_ERRORS = {
  400: { type: 'invalid_request_error', message: 'Invalid request (mock).' },
  401: { type: 'authentication_error', message: 'invalid x-api-key' },
  402: { type: 'billing_error', message: 'Billing problem (mock).' },
  403: { type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' },
  404: { type: 'not_found_error', message: 'The requested resource could not be found.' },
  413: { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' },
  429: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit (mock).' },
  500: { type: 'api_error', message: 'Internal server error' },
  504: { type: 'timeout_error', message: 'Request timed out (mock).' },
  529: { type: 'overloaded_error', message: 'Overloaded' },
};

function defaultError(status) {
  return DEFAULT_ERRORS[status] ?? (status >= 500 ? DEFAULT_ERRORS[500] : DEFAULT_ERRORS[400]);
}

function errorBody(type, message, seq = 0) {
  return JSON.stringify({ type: 'error', error: { type, message }, request_id: `req_mock_${seq}` });
}

// ---- deterministic reply construction ------------------------------------------------------

function blockText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.filter((b) => b && b.type === 'text' && typeof b.text === 'string')
      .map((b) => b.text).join(' ');
  }
  return '';
}

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.role === 'user') {
      const t = blockText(m.content);
      if (t) return t;
      // a user turn of tool results only: answer about the results
      if (Array.isArray(m.content)) {
        const r = m.content.filter((b) => b && b.type === 'tool_result').map((b) => blockText(b.content)).join(' ');
        if (r) return r;
      }
    }
  }
  return '';
}

function countWords(s) {
  const t = s.trim();
  return t ? t.split(/\s+/).length : 0;
}

function inputTokens(body) {
  let n = countWords(blockText(body.system));
  for (const m of body.messages) n += 3 + countWords(blockText(m && m.content));
  return n + 3;
}

function words(text) {
  return text.split(' ').filter((w) => w !== '').map((w, i) => (i === 0 ? w : ' ' + w));
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

function toolInput(tool) {
  const props = (tool.input_schema && tool.input_schema.properties) || {};
  const input = {};
  for (const [k, s] of Object.entries(props)) input[k] = exampleValue(k, s);
  return input;
}

function chosenTools(body) {
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => t && t.name && t.input_schema) : [];
  const tc = body.tool_choice || {};
  if (!tools.length || tc.type === 'none') return [];
  if (tc.type === 'tool') return tools.filter((t) => t.name === tc.name).slice(0, 1);
  if (!tc.disable_parallel_tool_use && tools.length >= 2) return tools;
  return tools.slice(0, 1);
}

// Plans the whole answer once; the JSON and the SSE renderings are both built from it.
function plan(body, knob, seq) {
  const user = lastUserText(body.messages);
  const calls = chosenTools(body).map((t, i) => ({
    id: 'toolu_' + createHash('sha1').update(`${i}\0${t.name}\0${user}`).digest('hex').slice(0, 24),
    name: t.name,
    input: toolInput(t),
  }));
  const blocks = [];
  let output = 0;
  if (body.thinking && body.thinking.type === 'enabled') {
    const pieces = words(`mock thinking about: ${user}`);
    const sig = 'mocksig_' + createHash('sha1').update(user).digest('hex').slice(0, 16);
    blocks.push({ type: 'thinking', pieces, signature: sig });
    output += pieces.length;
  }
  let stop = 'end_turn';
  let stopSequence = null;
  if (calls.length) {
    // A forced choice (any, tool) prefills the turn with the tool call: no text comes first.
    const forced = body.tool_choice && (body.tool_choice.type === 'any' || body.tool_choice.type === 'tool');
    if (!forced) blocks.push({ type: 'text', pieces: ['Calling', ' tools.'] });
    for (const c of calls) blocks.push({ type: 'tool_use', call: c });
    output += (forced ? 0 : 2) + calls.reduce((s, c) => s + Math.ceil(JSON.stringify(c.input).length / 4), 0);
    stop = 'tool_use';
  } else {
    let text = `mock reply to: ${user}`;
    for (const s of Array.isArray(body.stop_sequences) ? body.stop_sequences : []) {
      const at = typeof s === 'string' && s ? text.indexOf(s) : -1;
      if (at >= 0) {
        text = text.slice(0, at);
        stop = 'stop_sequence';
        stopSequence = s;
        break;
      }
    }
    let pieces = words(text);
    if (knob && Number.isInteger(knob.chunks) && knob.chunks > 0) {
      const want = knob.chunks;
      if (pieces.length > want) pieces = pieces.slice(0, want - 1).concat(pieces.slice(want - 1).join(''));
      for (let i = pieces.length; i < want; i++) pieces.push(` w${i}`);
    }
    const limit = Number.isInteger(body.max_tokens) ? body.max_tokens : Infinity;
    if (pieces.length > limit) {
      pieces = pieces.slice(0, limit);
      stop = 'max_tokens';
      stopSequence = null;
    }
    blocks.push({ type: 'text', pieces });
    output += pieces.length;
  }
  return {
    id: `msg_mock${seq}`,
    model: body.model,
    blocks: blocks.filter((b) => b.type !== 'text' || b.pieces.length),
    stop,
    stopSequence,
    usage: {
      input_tokens: inputTokens(body),
      cache_creation_input_tokens: knob && Number.isInteger(knob.cache_write) ? knob.cache_write : 0,
      cache_read_input_tokens: knob && Number.isInteger(knob.cache_read) ? knob.cache_read : 0,
      output_tokens: output,
    },
  };
}

function contentOf(b) {
  switch (b.type) {
    case 'thinking': return { type: 'thinking', thinking: b.pieces.join(''), signature: b.signature };
    case 'tool_use': return { type: 'tool_use', id: b.call.id, name: b.call.name, input: b.call.input };
    default: return { type: 'text', text: b.pieces.join('') };
  }
}

function messageJSON(p) {
  return JSON.stringify({
    id: p.id, type: 'message', role: 'assistant', model: p.model,
    content: p.blocks.map(contentOf),
    stop_reason: p.stop, stop_sequence: p.stopSequence, stop_details: null,
    usage: { ...p.usage, service_tier: 'standard' },
  });
}

// Splits a string into fragments of at most 6 characters.
function fragments(s) {
  const out = [];
  for (let i = 0; i < s.length; i += 6) out.push(s.slice(i, i + 6));
  return out;
}

// The SSE events as [name, payload JSON] pairs.
function streamEvents(p, knob) {
  const ev = [];
  const push = (o) => ev.push([o.type, JSON.stringify(o)]);
  push({ type: 'message_start', message: {
    id: p.id, type: 'message', role: 'assistant', model: p.model, content: [],
    stop_reason: null, stop_sequence: null, usage: { ...p.usage, output_tokens: 1 } } });
  p.blocks.forEach((b, index) => {
    if (b.type === 'thinking') {
      push({ type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } });
    } else if (b.type === 'tool_use') {
      push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.call.id, name: b.call.name, input: {} } });
    } else {
      push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    }
    if (index === 0) push({ type: 'ping' });
    if (b.type === 'thinking') {
      for (const w of b.pieces) push({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: w } });
      push({ type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: b.signature } });
    } else if (b.type === 'tool_use') {
      for (const f of ['', ...fragments(JSON.stringify(b.call.input))]) {
        push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: f } });
      }
    } else {
      for (const w of b.pieces) push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: w } });
    }
    push({ type: 'content_block_stop', index });
  });
  const usage = knob && knob.delta_usage ? { ...p.usage } : { output_tokens: p.usage.output_tokens };
  push({ type: 'message_delta', delta: { stop_reason: p.stop, stop_sequence: p.stopSequence, stop_details: null }, usage });
  push({ type: 'message_stop' });
  return ev;
}

const sse = ([name, data]) => `event: ${name}\ndata: ${data}\n\n`;

// ---- the server -------------------------------------------------------------------------

export async function startMock(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const apiKey = opts.apiKey ?? null;
  const logCap = opts.logCap ?? 10000;
  const models = opts.models ?? DEFAULT_MODELS;
  let log = [];
  let knobs = [];
  let seq = 0;
  const timers = new Set();
  let closed = false;

  function takeKnob(path) {
    const i = knobs.findIndex((k) => (k.path ?? '/v1/messages') === path);
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
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
    res.end(text);
  }

  async function answer(req, res, entry, body, knob) {
    const hdrs = { 'request-id': `req_mock_${entry.seq}`, ...(knob && knob.headers ? knob.headers : {}) };
    if (knob && knob.hang) return;
    if (knob && knob.latency_ms) await sleep(knob.latency_ms, res);
    if (res.destroyed) return;

    if (knob && (knob.status || knob.body !== undefined)) {
      const status = knob.status || 200;
      const err = knob.error ?? defaultError(status);
      const text = knob.body !== undefined
        ? (typeof knob.body === 'string' ? knob.body : JSON.stringify(knob.body))
        : errorBody(err.type, err.message, entry.seq);
      entry.status = status;
      return sendJSON(res, status, text, hdrs);
    }

    const p = plan(body, knob, entry.seq);
    entry.status = 200;
    if (body.stream !== true) {
      const text = messageJSON(p);
      if (!knob) return sendJSON(res, 200, text, hdrs);
      return slowBody(res, text, hdrs, knob, entry);
    }
    const events = streamEvents(p, knob);
    const sseHeaders = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...hdrs };
    if (!knob) {
      res.writeHead(200, sseHeaders);
      res.end(events.map(sse).join(''));
      return;
    }
    return slowStream(res, events, sseHeaders, knob, entry);
  }

  async function slowBody(res, text, hdrs, knob, entry) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...hdrs });
    res.flushHeaders();
    await sleep(knob.ttfb_ms, res);
    const buf = Buffer.from(text);
    const limit = Number.isInteger(knob.cut_after) ? Math.min(knob.cut_after, buf.length) : buf.length;
    const pieces = knob.drip_ms ? 4 : 1;
    const step = Math.max(1, Math.ceil(limit / pieces));
    for (let off = 0; off < limit; off += step) {
      if (res.destroyed) return;
      if (off > 0) await sleep(knob.drip_ms, res);
      if (res.destroyed) return;
      const piece = buf.subarray(off, Math.min(limit, off + step));
      if (off + step >= limit && limit < buf.length) return cutAfter(res, entry, piece);
      res.write(piece);
    }
    if (limit === 0 && buf.length) {
      entry.cut = true;
      return res.socket && res.socket.destroy();
    }
    res.end();
  }

  function cutAfter(res, entry, last) {
    entry.cut = true;
    res.write(last, () => { if (res.socket) res.socket.destroy(); });
  }

  async function slowStream(res, events, headers, knob, entry) {
    res.writeHead(200, headers);
    res.flushHeaders();
    await sleep(knob.ttfb_ms, res);
    if (knob.cut_after === 0) {
      entry.cut = true;
      return res.socket && res.socket.destroy();
    }
    const err = knob.error ?? DEFAULT_ERRORS[529];
    for (let i = 0; i < events.length; i++) {
      const n = i + 1;
      if (res.destroyed) return;
      if (i > 0) await sleep(knob.drip_ms, res);
      if (res.destroyed) return;
      if (n === knob.error_event_at) {
        res.end(sse(['error', JSON.stringify({ type: 'error', error: { type: err.type, message: err.message } })]));
        return;
      }
      const payload = n === knob.malformed_at ? [events[i][0], '{"type":"content_block_delta","index":0,"delta":{"type":"text_de'] : events[i];
      if (n === knob.cut_after) return cutAfter(res, entry, sse(payload));
      res.write(sse(payload));
    }
    if (!res.destroyed) res.end();
  }

  function handleControl(req, res, raw) {
    const path = req.url.split('?')[0];
    if (path === '/__control' && req.method === 'POST') {
      try {
        addKnobs(JSON.parse(raw.toString('utf8') || '{}'));
      } catch (e) {
        return sendJSON(res, 400, errorBody('invalid_request_error', `bad knob: ${e.message}`));
      }
      return sendJSON(res, 200, JSON.stringify({ ok: true, queued: knobs.length }));
    }
    if (path === '/__reset' && req.method === 'POST') {
      knobs = [];
      log = [];
      return sendJSON(res, 200, '{"ok":true}');
    }
    if (path === '/__requests' && req.method === 'GET') {
      return sendJSON(res, 200, JSON.stringify(log));
    }
    return sendJSON(res, 404, errorBody('not_found_error', `Not found (${req.method} ${path})`));
  }

  // The checks the real API makes before anything else, in its words.
  function invalid(body) {
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      return 'There was an issue with the formatting or content of your request body.';
    }
    if (typeof body.model !== 'string' || !body.model) return 'model: Field required';
    if (!Number.isInteger(body.max_tokens)) return 'max_tokens: Field required';
    if (!Array.isArray(body.messages) || !body.messages.length) return 'messages: Field required';
    for (const [i, m] of body.messages.entries()) {
      if (!m || (m.role !== 'user' && m.role !== 'assistant')) return `messages.${i}.role: Input should be 'user' or 'assistant'`;
      if (m.content === undefined || m.content === '' || (Array.isArray(m.content) && !m.content.length)) {
        if (!(m.role === 'assistant' && i === body.messages.length - 1)) {
          return `messages.${i}: all messages must have non-empty content except for the optional final assistant message`;
        }
      }
      if (Array.isArray(m.content)) {
        for (const [j, b] of m.content.entries()) {
          if (b && b.type === 'text' && !b.text) return `messages.${i}.content.${j}.text: text content blocks must be non-empty`;
          if (b && b.type === 'tool_use' && (typeof b.input !== 'object' || Array.isArray(b.input) || b.input === null)) {
            return `messages.${i}.content.${j}.tool_use.input: Input should be a valid dictionary`;
          }
        }
      }
    }
    if (body.temperature !== undefined && (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 1)) {
      return 'temperature: Input should be less than or equal to 1';
    }
    if (body.tool_choice !== undefined && !(Array.isArray(body.tools) && body.tools.length)) {
      return 'tool_choice: tool_choice may only be specified while providing tools';
    }
    return null;
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

    const knob = takeKnob(path);
    const send = (status, type, message) => {
      entry.status = status;
      sendJSON(res, status, errorBody(type, message, entry.seq), { 'request-id': `req_mock_${entry.seq}` });
    };
    if (apiKey && req.headers['x-api-key'] !== apiKey && req.headers.authorization !== `Bearer ${apiKey}`) {
      const given = req.headers['x-api-key'] || req.headers.authorization;
      return send(401, 'authentication_error', given ? 'invalid x-api-key' : 'x-api-key header is required');
    }
    if (path === '/v1/models') {
      if (req.method !== 'GET') return send(405, 'invalid_request_error', `Method not allowed (${req.method} ${path})`);
      entry.status = 200;
      const data = models.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
      return sendJSON(res, 200, JSON.stringify({ data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null }));
    }
    if (path !== '/v1/messages') return send(404, 'not_found_error', `Not found (${req.method} ${path})`);
    if (req.method !== 'POST') return send(405, 'invalid_request_error', `Method not allowed (${req.method} ${path})`);
    if (!req.headers['anthropic-version']) return send(400, 'invalid_request_error', 'anthropic-version: header is required');
    const why = invalid(body);
    if (why) return send(400, 'invalid_request_error', why);
    answer(req, res, entry, body, knob).catch((e) => {
      if (!res.headersSent) send(500, 'api_error', `mock failure: ${e.message}`);
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
    else if (a === '--api-key') o.apiKey = argv[++i];
    else throw new Error(`unknown argument ${a} (usage: anthropic-mock.mjs --port N [--host H] [--api-key KEY])`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port must be 0..65535');
  return o;
}

await runCli('anthropic-mock', import.meta.url, startMock, parseArgs);
