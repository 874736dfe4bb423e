// cohere-mock.mjs: a mock Cohere upstream speaking the real v2 wire formats (protocols.md §3):
// Chat v2 (/v2/chat: JSON, or SSE with Cohere's typed events when "stream":true) and Embed v2
// (/v2/embed), with the same control endpoint and fault knobs as openai-mock.mjs.
//
// Module:  const mock = await startMock({port: 0, apiKey: 'k'}); ... await mock.close();
//          -> {port, url, close(), control(knob), reset(), requests()}
//          also exported: mockVector(text, dims) (the embedding the mock returns for a text)
// CLI:     node tests/mock/cohere-mock.mjs --port N [--host H] [--api-key KEY]
//          prints "listening PORT" on stdout once bound; SIGTERM/SIGINT close it.
//
// Endpoints
//   POST /v2/chat   The reply text is deterministic: "mock reply to: <last user text>", one
//        content-delta per word; max_tokens cuts it (finish_reason MAX_TOKENS; one word = one
//        token). With `tools` (and tool_choice not "NONE") it answers with tool calls instead:
//        every tool when there are 2+, else the one; a tool_plan first ("I will call a, b.");
//        arguments are built from each tool's JSON-schema properties and streamed in fragments
//        of 6 characters. response_format json_object wraps the reply as {"reply": ...}.
//        Streams: event: message-start, [tool-plan-delta..., tool-call-start/delta/end...] or
//        [content-start, content-delta..., content-end], message-end {finish_reason, usage};
//        then `data: [DONE]` (as third-party fixtures show; Cohere's SDK accepts it).
//        usage: billed_units {input_tokens = words of the user turns, output_tokens} and
//        tokens {input_tokens = billed + 64 (Cohere's template), output_tokens}.
//   POST /v2/embed  {id, embeddings: {float: [[...]]}, texts, meta{api_version, billed_units},
//        response_type: "embeddings_by_type"}; vectors are mockVector(text, output_dimension||8).
//        input_type is required (Cohere requires it for v3+ models).
//   POST /__control, POST /__reset, GET /__requests: as in openai-mock.mjs.
//
// Validation (the mock is at least as strict as Cohere, so translation mistakes show up): the
// body must be a JSON object with only known top-level fields; model a string; messages a
// non-empty array of known roles; tool messages need tool_call_id; assistant tool call arguments
// must be strings; p in 0.01..0.99, k in 0..500, penalties in 0..1, tool_choice REQUIRED or
// NONE, at most 5 stop_sequences. Errors are Cohere's {"message": "..."}; with apiKey set,
// `Authorization: Bearer <apiKey>` is required (else 401 {"message":"invalid api token"}).
//
// Knob fields (all optional). A knob applies to the next `count` (default 1) requests whose path
// equals `path` (default "/v2/chat") and that pass authentication and validation; knobs are used
// in the order queued.
//   status, message, body   answer with this status; body verbatim when given, else
//                           {"message": message || a default for the status}
//   headers                 extra response headers, on any answer
//   latency_ms, ttfb_ms, drip_ms, chunks, hang   as in openai-mock.mjs
//   cut_after               destroy the socket after N SSE events (0: right after the headers)
//   malformed_at            SSE event N (1-based) is a non-JSON payload; the stream goes on
//   error_at                the stream ends with event N being message-end with finish_reason
//                           ERROR and delta.error (knob `message` or a default), then [DONE]
// SSE events are counted from 1 and include message-start and message-end, not [DONE].

import { listen, runCli } from './serve.mjs';
import { createHash } from 'node:crypto';

const MAX_BODY = 64 * 1024 * 1024;
const TEMPLATE_TOKENS = 64;

const DEFAULT_MESSAGES = {
  400: 'invalid request (mock)',
  401: 'invalid api token',
  404: "model 'x' not found (mock)",
  429: 'You are using a Trial key, which is limited to 10 API calls / minute (mock).',
  500: 'internal server error, this has been reported to our developers',
  503: 'service unavailable (mock)',
};

const CHAT_FIELDS = new Set(['model', 'messages', 'stream', 'tools', 'strict_tools', 'documents',
  'citation_options', 'response_format', 'safety_mode', 'max_tokens', 'stop_sequences',
  'temperature', 'seed', 'frequency_penalty', 'presence_penalty', 'k', 'p', 'logprobs',
  'tool_choice', 'thinking', 'priority']);
const EMBED_FIELDS = new Set(['model', 'texts', 'images', 'inputs', 'input_type', 'max_tokens',
  'output_dimension', 'embedding_types', 'truncate', 'priority']);
const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

function defaultMessage(status) {
  return DEFAULT_MESSAGES[status] ?? (status >= 500 ? DEFAULT_MESSAGES[500] : DEFAULT_MESSAGES[400]);
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

function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.filter((p) => p && p.type === 'text' && typeof p.text === 'string').map((p) => p.text).join(' ');
  }
  return '';
}

function checkRange(body, key, lo, hi) {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || v < lo || v > hi) return `invalid request: ${key} must be between ${lo} and ${hi}`;
  return null;
}

function validateChat(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'invalid request: body must be a JSON object';
  for (const k of Object.keys(body)) if (!CHAT_FIELDS.has(k)) return `invalid request: unknown field: parameter ${k} is not a valid field`;
  if (typeof body.model !== 'string' || !body.model) return 'invalid request: model must be a string';
  if (!Array.isArray(body.messages) || !body.messages.length) return 'invalid request: messages must be a non-empty array';
  for (const [i, m] of body.messages.entries()) {
    if (!m || !ROLES.has(m.role)) return `invalid request: messages[${i}].role must be one of system, user, assistant, tool`;
    if (m.role === 'tool' && typeof m.tool_call_id !== 'string') return `invalid request: messages[${i}].tool_call_id is required`;
    if (m.role === 'assistant' && m.tool_calls !== undefined) {
      if (!Array.isArray(m.tool_calls)) return `invalid request: messages[${i}].tool_calls must be an array`;
      for (const tc of m.tool_calls) {
        if (!tc || !tc.function || typeof tc.function.arguments !== 'string') return `invalid request: messages[${i}].tool_calls[].function.arguments must be a string`;
      }
    }
    if (m.role !== 'assistant' && m.content === undefined) return `invalid request: messages[${i}].content is required`;
  }
  if (body.tool_choice !== undefined && body.tool_choice !== 'REQUIRED' && body.tool_choice !== 'NONE') return 'invalid request: tool_choice must be REQUIRED or NONE';
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 5) return 'invalid request: too many stop sequences (max 5)';
  return checkRange(body, 'p', 0.01, 0.99) ?? checkRange(body, 'k', 0, 500) ??
    checkRange(body, 'frequency_penalty', 0, 1) ?? checkRange(body, 'presence_penalty', 0, 1);
}

function validateEmbed(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'invalid request: body must be a JSON object';
  for (const k of Object.keys(body)) if (!EMBED_FIELDS.has(k)) return `invalid request: unknown field: parameter ${k} is not a valid field`;
  if (typeof body.model !== 'string' || !body.model) return 'invalid request: model must be a string';
  if (!Array.isArray(body.texts) || !body.texts.length || body.texts.some((t) => typeof t !== 'string')) return 'invalid request: texts must be a non-empty array of strings';
  if (body.texts.length > 96) return 'invalid request: texts must have at most 96 items';
  if (typeof body.input_type !== 'string') return 'invalid request: input_type is required for embed models v3 and higher.';
  return null;
}

// ---- the answer -----------------------------------------------------------------------------

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return contentText(messages[i].content);
  return '';
}

function words(s) {
  const t = s.trim();
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
  if (!tools.length || body.tool_choice === 'NONE') return [];
  const chosen = tools.length >= 2 ? tools : tools.slice(0, 1);
  const user = lastUserText(body.messages);
  return chosen.map((t, i) => {
    const props = (t.function.parameters && t.function.parameters.properties) || {};
    const args = {};
    for (const [k, s] of Object.entries(props)) args[k] = exampleValue(k, s);
    return { id: `${t.function.name}_${hash(`${i}\0${t.function.name}\0${user}`).slice(0, 12)}`,
      type: 'function', function: { name: t.function.name, arguments: JSON.stringify(args) } };
  });
}

function plan(body, knob) {
  const calls = toolCalls(body);
  let pieces = [];
  let finish = 'COMPLETE';
  if (!calls.length) {
    let text = 'mock reply to: ' + lastUserText(body.messages);
    if (body.response_format && body.response_format.type === 'json_object') text = JSON.stringify({ reply: text });
    pieces = text.split(' ').filter((w) => w !== '').map((w, i) => (i ? ' ' + w : w));
    if (knob && Number.isInteger(knob.chunks) && knob.chunks > 0) {
      const want = knob.chunks;
      if (pieces.length > want) pieces = pieces.slice(0, want - 1).concat(pieces.slice(want - 1).join(''));
      for (let i = pieces.length; i < want; i++) pieces.push(` w${i}`);
    }
    if (Number.isInteger(body.max_tokens) && pieces.length > body.max_tokens) {
      pieces = pieces.slice(0, body.max_tokens);
      finish = 'MAX_TOKENS';
    }
  } else {
    finish = 'TOOL_CALL';
  }
  const toolPlan = calls.length ? `I will call ${calls.map((c) => c.function.name).join(', ')}.` : '';
  const billedIn = body.messages.filter((m) => m.role === 'user').reduce((n, m) => n + words(contentText(m.content)), 0);
  const out = calls.length ? calls.reduce((n, c) => n + Math.ceil(c.function.arguments.length / 4), 0) : pieces.length;
  return {
    calls, pieces, finish, toolPlan,
    usage: { billed_units: { input_tokens: billedIn, output_tokens: out },
      tokens: { input_tokens: billedIn + TEMPLATE_TOKENS, output_tokens: out } },
  };
}

function chatJSON(p, id) {
  const message = { role: 'assistant' };
  if (p.calls.length) {
    message.tool_plan = p.toolPlan;
    message.tool_calls = p.calls;
  } else {
    message.content = [{ type: 'text', text: p.pieces.join('') }];
  }
  return JSON.stringify({ id, finish_reason: p.finish, message, usage: p.usage });
}

function fragments(s) {
  const out = [];
  for (let i = 0; i < s.length; i += 6) out.push(s.slice(i, i + 6));
  return out;
}

// The stream as [type, payload] pairs, without [DONE].
function streamEvents(p, id) {
  const ev = [];
  const add = (o) => ev.push([o.type, JSON.stringify(o)]);
  add({ id, type: 'message-start', delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } });
  if (p.calls.length) {
    for (const w of p.toolPlan.split(/(?<= )/)) add({ type: 'tool-plan-delta', delta: { message: { tool_plan: w } } });
    p.calls.forEach((c, k) => {
      const index = k + 1; // Cohere counts tool events after the (empty) text content
      add({ type: 'tool-call-start', index, delta: { message: { tool_calls: { id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } } } } });
      for (const f of fragments(c.function.arguments)) add({ type: 'tool-call-delta', index, delta: { message: { tool_calls: { function: { arguments: f } } } } });
      add({ type: 'tool-call-end', index });
    });
  } else {
    add({ type: 'content-start', index: 0, delta: { message: { content: { type: 'text', text: '' } } } });
    for (const w of p.pieces) add({ type: 'content-delta', index: 0, delta: { message: { content: { text: w } } }, logprobs: null });
    add({ type: 'content-end', index: 0 });
  }
  add({ type: 'message-end', delta: { finish_reason: p.finish, usage: p.usage } });
  return ev;
}

function embedJSON(body, id) {
  const dims = Number.isInteger(body.output_dimension) && body.output_dimension > 0 ? body.output_dimension : 8;
  const tokens = body.texts.reduce((n, t) => n + Math.max(1, words(t)), 0);
  return JSON.stringify({
    id, embeddings: { float: body.texts.map((t) => mockVector(t, dims)) }, texts: body.texts,
    meta: { api_version: { version: '2' }, billed_units: { input_tokens: tokens } },
    response_type: 'embeddings_by_type',
  });
}

// ---- the server -------------------------------------------------------------------------

export async function startMock(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const apiKey = opts.apiKey ?? null;
  const logCap = opts.logCap ?? 10000;
  let log = [];
  let knobs = [];
  let seq = 0;
  const timers = new Set();
  let closed = false;

  function takeKnob(path) {
    const i = knobs.findIndex((k) => (k.path ?? '/v2/chat') === path);
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

  const errorText = (message) => JSON.stringify({ message });

  async function answer(req, res, entry, body, knob, path) {
    const id = hash(`mock${entry.seq}`).slice(0, 8) + '-0000-4000-8000-' + hash(`r${entry.seq}`).slice(0, 12);
    const hdrs = { 'x-debug-trace-id': `mock-${entry.seq}`, ...(knob && knob.headers ? knob.headers : {}) };
    if (knob && knob.hang) return;
    if (knob && knob.latency_ms) await sleep(knob.latency_ms, res);
    if (res.destroyed) return;
    if (knob && (knob.status || knob.body !== undefined)) {
      const status = knob.status || 200;
      const text = knob.body !== undefined
        ? (typeof knob.body === 'string' ? knob.body : JSON.stringify(knob.body))
        : errorText(knob.message ?? defaultMessage(status));
      entry.status = status;
      return sendJSON(res, status, text, hdrs);
    }
    entry.status = 200;
    if (path === '/v2/embed') return sendJSON(res, 200, embedJSON(body, id), hdrs);
    const p = plan(body, knob);
    if (body.stream !== true) {
      const text = chatJSON(p, id);
      if (!knob) return sendJSON(res, 200, text, hdrs);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...hdrs });
      res.flushHeaders();
      await sleep(knob.ttfb_ms, res);
      if (Number.isInteger(knob.cut_after)) {
        entry.cut = true;
        return res.write(text.slice(0, knob.cut_after), () => res.socket && res.socket.destroy());
      }
      return res.end(text);
    }
    const events = streamEvents(p, id);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...hdrs });
    if (!knob) {
      res.end(events.map(([t, d]) => `event: ${t}\ndata: ${d}\n\n`).join('') + 'data: [DONE]\n\n');
      return;
    }
    res.flushHeaders();
    await sleep(knob.ttfb_ms, res);
    if (knob.cut_after === 0) {
      entry.cut = true;
      return res.socket && res.socket.destroy();
    }
    for (let i = 0; i < events.length; i++) {
      const n = i + 1;
      if (res.destroyed) return;
      if (i > 0) await sleep(knob.drip_ms, res);
      if (res.destroyed) return;
      let [type, payload] = events[i];
      if (n === knob.error_at) {
        const end = JSON.stringify({ type: 'message-end', delta: { error: knob.message ?? defaultMessage(500), finish_reason: 'ERROR' } });
        res.end(`event: message-end\ndata: ${end}\n\ndata: [DONE]\n\n`);
        return;
      }
      if (n === knob.malformed_at) payload = '{"type":"content-delta","delta":{"message":{"content":{"text":"tr';
      const text = `event: ${type}\ndata: ${payload}\n\n`;
      if (n === knob.cut_after) {
        entry.cut = true;
        return res.write(text, () => res.socket && res.socket.destroy());
      }
      res.write(text);
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
    return sendJSON(res, 404, errorText(`Invalid URL (${req.method} ${path})`));
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
    if (apiKey && req.headers.authorization !== `Bearer ${apiKey}`) return send(401, errorText('invalid api token'));
    if (path !== '/v2/chat' && path !== '/v2/embed') return send(404, errorText(`Invalid URL (${req.method} ${path})`));
    if (req.method !== 'POST') return send(405, errorText(`Invalid method (${req.method} ${path})`));
    if (body === undefined) return send(400, errorText('invalid request: could not parse the JSON body'));
    const problem = path === '/v2/chat' ? validateChat(body) : validateEmbed(body);
    if (problem) return send(400, errorText(problem));
    const knob = takeKnob(path);
    answer(req, res, entry, body, knob, path).catch((e) => {
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
    else if (a === '--api-key') o.apiKey = argv[++i];
    else throw new Error(`unknown argument ${a} (usage: cohere-mock.mjs --port N [--host H] [--api-key KEY])`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port must be 0..65535');
  return o;
}

await runCli('cohere-mock', import.meta.url, startMock, parseArgs);
