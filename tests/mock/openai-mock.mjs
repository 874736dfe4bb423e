// openai-mock.mjs: a mock OpenAI upstream that speaks the real Chat Completions wire format
// (protocols.md §1.6 non-streaming, §1.7 SSE streaming, §1.8 errors), with fault knobs that
// integration tests set through a control endpoint.
//
// Module:  const mock = await startMock({port: 0, apiKey: 'k'}); ... await mock.close();
//          -> {port, url ('http://127.0.0.1:PORT'), close(), control(knob), reset(), requests()}
// CLI:     node tests/mock/openai-mock.mjs --port N [--host H] [--api-key KEY]
//          prints "listening PORT" on stdout once bound; SIGTERM/SIGINT close it.
//
// Endpoints
//   POST /v1/chat/completions  chat.completion, or chat.completion.chunk SSE with "stream":true.
//        The reply text is deterministic: "mock reply to: <last user text>", one chunk per word;
//        max_completion_tokens / max_tokens cut it (finish_reason "length"; one word = one token).
//        With `tools` (and tool_choice not "none") it answers with tool calls instead: every tool
//        when parallel_tool_calls is not false and there are 2+ tools, else the first (or the one
//        named by tool_choice). Arguments are built from each tool's JSON-schema properties and are
//        streamed as fragments. `model` is echoed. `n` choices are produced (interleaved when
//        streaming). With apiKey set, `Authorization: Bearer <apiKey>` is required (else 401).
//   GET  /v1/models             list shape.
//   GET  /health                llama-server's and vLLM's health endpoint: 200 {"status":"ok"}; a
//                               knob with path "/health" and `status` answers that status instead
//                               (503 {"error":{...}}, as llama-server while it loads a model). No
//                               API key is needed, as with llama-server.
//   POST /__control             queue a fault knob (JSON object, or an array of them), see below.
//   POST /__reset               clear knobs and the request log.
//   GET  /__requests            JSON array: the log of every non-control request received.
//
// Knob fields (all optional). A knob applies to the next `count` (default 1) requests whose path
// equals `path` (default "/v1/chat/completions"); knobs are used in the order queued.
//   status, error, body   answer with this HTTP status; the body is `body` verbatim when given,
//                         else {"error": error || a default OpenAI error for the status}
//   headers               extra response headers (e.g. {"retry-after": "7"}), on any answer
//   latency_ms            wait before sending the status line and headers
//   ttfb_ms               wait after the headers before the first body byte
//   drip_ms               wait between two SSE events (between body pieces when not streaming)
//   chunks                number of content chunks (words) in the reply
//   cut_after             destroy the socket after N SSE events (after N body bytes when not
//                         streaming; 0: right after the headers), so no [DONE] and no
//                         chunked terminator
//   malformed_at          SSE event N (1-based) is a non-JSON payload; the stream then goes on
//   error_event_at        SSE event N is `data: {"error":{...}}` (knob `error` or a server_error)
//                         and the response ends there, cleanly, without [DONE]
//   hang                  never answer (the request stays open until the client closes it)
//   reply                 the reply text, verbatim (not even wrapped as JSON for response_format),
//                         instead of "mock reply to: ..." (split into words as usual)
//   logprob               the log-probability of every token when logprobs are asked for
//                         (default -0.25)
// SSE events are counted from 1 and include the role chunk, the finish chunk and the usage chunk,
// but not `data: [DONE]`.
//
// Request log entries: {seq, method, path, headers, body (parsed JSON, or the raw text when it is
// not JSON), received_at, finished_at, status, aborted, aborted_at, cut}. `aborted` is true when
// the client closed the connection before the response was completely written (a mock-side
// `cut_after` sets `cut` instead); times are Date.now() milliseconds. The log keeps the newest
// `logCap` (default 10000) entries. Without knobs a request costs one small object in the log and
// one write.

import { listen, runCli } from './serve.mjs';
import { createHash } from 'node:crypto';

const MAX_BODY = 64 * 1024 * 1024;
const CREATED = 1735000000; // fixed: replies are deterministic apart from id and created
const DEFAULT_MODELS = ['gpt-4o', 'gpt-4o-mini', 'real-name'];

const DEFAULT_ERRORS = {
  400: { message: 'Invalid request (mock).', type: 'invalid_request_error', param: null, code: null },
  401: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
  403: { message: 'Permission denied (mock).', type: 'invalid_request_error', param: null, code: null },
  404: { message: 'The model does not exist (mock).', type: 'invalid_request_error', param: null, code: 'model_not_found' },
  429: { message: 'Rate limit reached (mock).', type: 'requests', param: null, code: 'rate_limit_exceeded' },
  500: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null },
  503: { message: 'The engine is currently overloaded.', type: 'server_error', param: null, code: null },
};

function defaultError(status) {
  return DEFAULT_ERRORS[status] ?? (status >= 500 ? DEFAULT_ERRORS[500] : DEFAULT_ERRORS[400]);
}

function errorBody(message, type, param = null, code = null) {
  return JSON.stringify({ error: { message, type, param, code } });
}

// ---- deterministic reply construction ------------------------------------------------------

function partText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.filter((p) => p && p.type === 'text' && typeof p.text === 'string')
      .map((p) => p.text).join(' ');
  }
  return '';
}

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.role === 'user') return partText(m.content);
  }
  return '';
}

function countWords(s) {
  const t = s.trim();
  return t ? t.split(/\s+/).length : 0;
}

function promptTokens(messages) {
  let n = 0;
  for (const m of messages) n += 3 + countWords(partText(m && m.content));
  return n + 3;
}

// The reply as word pieces ("mock", " reply", " to:", ...), before any max_tokens cut.
function replyPieces(body, knob) {
  const verbatim = knob && typeof knob.reply === 'string';
  let text = verbatim ? knob.reply : 'mock reply to: ' + lastUserText(body.messages);
  const rf = body.response_format;
  if (!verbatim && rf && (rf.type === 'json_object' || rf.type === 'json_schema')) {
    text = JSON.stringify({ reply: text });
  }
  const words = text.split(' ').filter((w) => w !== '');
  let pieces = words.map((w, i) => (i === 0 ? w : ' ' + w));
  if (knob && Number.isInteger(knob.chunks) && knob.chunks > 0) {
    const want = knob.chunks;
    if (pieces.length > want) {
      pieces = pieces.slice(0, want - 1).concat(pieces.slice(want - 1).join(''));
    }
    for (let i = pieces.length; i < want; i++) pieces.push(` w${i}`);
  }
  return pieces;
}

function tokenLimit(body) {
  const v = body.max_completion_tokens ?? body.max_tokens;
  return Number.isInteger(v) && v >= 0 ? v : Infinity;
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

function toolArguments(tool) {
  const props = (tool.function && tool.function.parameters && tool.function.parameters.properties) || {};
  const args = {};
  for (const [k, s] of Object.entries(props)) args[k] = exampleValue(k, s);
  return JSON.stringify(args);
}

function chosenTools(body) {
  const tools = Array.isArray(body.tools)
    ? body.tools.filter((t) => t && t.type === 'function' && t.function && t.function.name) : [];
  const tc = body.tool_choice;
  if (!tools.length || tc === 'none') return [];
  if (tc && typeof tc === 'object' && tc.function && tc.function.name) {
    return tools.filter((t) => t.function.name === tc.function.name).slice(0, 1);
  }
  if (body.parallel_tool_calls !== false && tools.length >= 2) return tools;
  return tools.slice(0, 1);
}

function toolCalls(body) {
  const user = lastUserText(body.messages);
  return chosenTools(body).map((t, i) => ({
    id: 'call_' + createHash('sha1').update(`${i}\0${t.function.name}\0${user}`).digest('hex').slice(0, 24),
    type: 'function',
    function: { name: t.function.name, arguments: toolArguments(t) },
  }));
}

function logprobsFor(pieces, body, lp) {
  if (body.logprobs !== true) return null;
  const top = Number.isInteger(body.top_logprobs) ? body.top_logprobs : 0;
  return pieces.map((tok) => ({
    token: tok,
    logprob: lp,
    bytes: [...Buffer.from(tok, 'utf8')],
    top_logprobs: Array.from({ length: top }, (_, k) => ({
      token: k === 0 ? tok : `${tok}#${k}`,
      logprob: lp - k,
      bytes: [...Buffer.from(k === 0 ? tok : `${tok}#${k}`, 'utf8')],
    })),
  }));
}

// Plans the whole answer once; both the JSON and the SSE renderings are built from it.
function plan(body, knob) {
  const n = Number.isInteger(body.n) && body.n > 0 ? Math.min(body.n, 16) : 1;
  const calls = toolCalls(body);
  let pieces = [];
  let finish = 'stop';
  if (calls.length) {
    finish = 'tool_calls';
  } else {
    pieces = replyPieces(body, knob);
    const limit = tokenLimit(body);
    if (pieces.length > limit) {
      pieces = pieces.slice(0, limit);
      finish = 'length';
    }
  }
  const completion = calls.length
    ? calls.reduce((s, c) => s + Math.ceil(c.function.arguments.length / 4), 0) : pieces.length;
  const prompt = promptTokens(body.messages);
  return {
    n, calls, pieces, finish,
    logprob: knob && typeof knob.logprob === 'number' ? knob.logprob : -0.25,
    model: body.model,
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion * n,
      total_tokens: prompt + completion * n,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0,
      },
    },
  };
}

function completionJSON(p, id, body) {
  const lp = logprobsFor(p.pieces, body, p.logprob);
  const choices = [];
  for (let i = 0; i < p.n; i++) {
    const message = p.calls.length
      ? { role: 'assistant', content: null, tool_calls: p.calls, refusal: null, annotations: [] }
      : { role: 'assistant', content: p.pieces.join(''), refusal: null, annotations: [] };
    choices.push({
      index: i, message, logprobs: lp ? { content: lp, refusal: null } : null, finish_reason: p.finish,
    });
  }
  return JSON.stringify({
    id, object: 'chat.completion', created: CREATED, model: p.model,
    choices, usage: p.usage, service_tier: 'default', system_fingerprint: 'fp_mock',
  });
}

// Splits a tool call's arguments into fragments of at most 6 characters.
function argFragments(s) {
  const out = [];
  for (let i = 0; i < s.length; i += 6) out.push(s.slice(i, i + 6));
  return out;
}

// The SSE event payloads (JSON strings), without the final [DONE].
function streamEvents(p, id, body) {
  const so = body.stream_options || {};
  const withUsage = so.include_usage === true;
  const obfuscate = so.include_obfuscation !== false;
  const lp = logprobsFor(p.pieces, body, p.logprob);
  const base = { id, object: 'chat.completion.chunk', created: CREATED, model: p.model,
    service_tier: 'default', system_fingerprint: 'fp_mock' };
  const events = [];
  const chunk = (index, delta, finish, logprobs = null) => {
    const c = { ...base, choices: [{ index, delta, logprobs, finish_reason: finish }] };
    if (withUsage) c.usage = null;
    if (obfuscate) c.obfuscation = 'x'.repeat(1 + (events.length % 7));
    events.push(JSON.stringify(c));
  };
  for (let i = 0; i < p.n; i++) {
    if (p.calls.length) chunk(i, { role: 'assistant', content: null, refusal: null }, null);
    else chunk(i, { role: 'assistant', content: '', refusal: null }, null);
  }
  if (p.calls.length) {
    p.calls.forEach((c, k) => {
      for (let i = 0; i < p.n; i++) {
        chunk(i, { tool_calls: [{ index: k, id: c.id, type: 'function',
          function: { name: c.function.name, arguments: '' } }] }, null);
      }
      for (const frag of argFragments(c.function.arguments)) {
        for (let i = 0; i < p.n; i++) chunk(i, { tool_calls: [{ index: k, function: { arguments: frag } }] }, null);
      }
    });
  } else {
    p.pieces.forEach((piece, k) => {
      for (let i = 0; i < p.n; i++) {
        chunk(i, { content: piece }, null, lp ? { content: [lp[k]], refusal: null } : null);
      }
    });
  }
  for (let i = 0; i < p.n; i++) chunk(i, {}, p.finish);
  if (withUsage) {
    const u = { ...base, choices: [], usage: p.usage };
    if (obfuscate) u.obfuscation = 'xyz';
    events.push(JSON.stringify(u));
  }
  return events;
}

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
    const i = knobs.findIndex((k) => (k.path ?? '/v1/chat/completions') === path);
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

  // Resolves after ms, or at once when the response closes or the mock shuts down.
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

  async function answerChat(req, res, entry, body, knob) {
    const id = `chatcmpl-mock${entry.seq}`;
    const hdrs = { 'x-request-id': `req_mock_${entry.seq}`, 'openai-processing-ms': '1',
      ...(knob && knob.headers ? knob.headers : {}) };
    if (knob && knob.hang) return; // never answer
    if (knob && knob.latency_ms) await sleep(knob.latency_ms, res);
    if (res.destroyed) return;

    if (knob && (knob.status || knob.body !== undefined)) {
      const status = knob.status || 200;
      const text = knob.body !== undefined
        ? (typeof knob.body === 'string' ? knob.body : JSON.stringify(knob.body))
        : JSON.stringify({ error: knob.error ?? defaultError(status) });
      entry.status = status;
      return sendJSON(res, status, text, hdrs);
    }

    const p = plan(body, knob);
    entry.status = 200;
    if (body.stream !== true) {
      const text = completionJSON(p, id, body);
      if (!knob) return sendJSON(res, 200, text, hdrs);
      return slowBody(res, text, hdrs, knob, entry);
    }
    const events = streamEvents(p, id, body);
    const sseHeaders = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...hdrs };
    if (!knob) {
      res.writeHead(200, sseHeaders);
      res.end(events.map((e) => `data: ${e}\n\n`).join('') + 'data: [DONE]\n\n');
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

  // Writes the last piece, lets it reach the kernel, then drops the connection without a
  // chunked terminator (and so without [DONE]).
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
    const errorPayload = JSON.stringify({ error: knob.error ?? defaultError(500) });
    for (let i = 0; i < events.length; i++) {
      const n = i + 1;
      if (res.destroyed) return;
      if (i > 0) await sleep(knob.drip_ms, res);
      if (res.destroyed) return;
      if (n === knob.error_event_at) {
        res.end(`data: ${errorPayload}\n\n`);
        return;
      }
      const payload = n === knob.malformed_at ? '{"id":"chatcmpl-broken","choices":[{"delta":{"content":"tr' : events[i];
      if (n === knob.cut_after) return cutAfter(res, entry, `data: ${payload}\n\n`);
      res.write(`data: ${payload}\n\n`);
    }
    await sleep(knob.drip_ms, res);
    if (!res.destroyed) res.end('data: [DONE]\n\n');
  }

  function handleControl(req, res, raw) {
    const path = req.url.split('?')[0];
    if (path === '/__control' && req.method === 'POST') {
      try {
        addKnobs(JSON.parse(raw.toString('utf8') || '{}'));
      } catch (e) {
        return sendJSON(res, 400, errorBody(`bad knob: ${e.message}`, 'invalid_request_error'));
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
    return sendJSON(res, 404, errorBody(`Invalid URL (${req.method} ${path})`, 'invalid_request_error'));
  }

  function authorized(req) {
    return !apiKey || req.headers.authorization === `Bearer ${apiKey}`;
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
    const send = (status, t) => { entry.status = status; sendJSON(res, status, t, { 'x-request-id': `req_mock_${entry.seq}` }); };
    if (path === '/health' && req.method === 'GET') {
      if (knob && knob.status) {
        return send(knob.status, JSON.stringify({ error: { code: knob.status, message: 'Loading model', type: 'unavailable_error' } }));
      }
      return send(200, '{"status":"ok"}');
    }
    if (!authorized(req)) {
      return send(401, errorBody(
        req.headers.authorization ? 'Incorrect API key provided.' :
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error', null, 'invalid_api_key'));
    }
    if (path === '/v1/models') {
      if (req.method !== 'GET') return send(405, errorBody(`Invalid method (${req.method} ${path})`, 'invalid_request_error'));
      if (knob && (knob.status || knob.hang)) return answerChat(req, res, entry, {}, knob);
      return send(200, JSON.stringify({ object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'system' })) }));
    }
    if (path !== '/v1/chat/completions') {
      return send(404, errorBody(`Invalid URL (${req.method} ${path})`, 'invalid_request_error'));
    }
    if (req.method !== 'POST') return send(405, errorBody(`Invalid method (${req.method} ${path})`, 'invalid_request_error'));
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      return send(400, errorBody('We could not parse the JSON body of your request.', 'invalid_request_error'));
    }
    if (typeof body.model !== 'string' || !body.model) {
      return send(400, errorBody('you must provide a model parameter', 'invalid_request_error'));
    }
    if (!Array.isArray(body.messages) || !body.messages.length) {
      return send(400, errorBody("Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter'));
    }
    answerChat(req, res, entry, body, knob).catch((e) => {
      if (!res.headersSent) send(500, errorBody(`mock failure: ${e.message}`, 'server_error'));
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
    else throw new Error(`unknown argument ${a} (usage: openai-mock.mjs --port N [--host H] [--api-key KEY])`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port must be 0..65535');
  return o;
}

await runCli('openai-mock', import.meta.url, startMock, parseArgs);
