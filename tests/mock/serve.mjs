// serve.mjs: what every mock upstream shares: an HTTP server on loopback that hands each request
// with its whole body (capped) to the mock's handler, and the command-line entry point.

import http from 'node:http';
import { pathToFileURL } from 'node:url';

// Listens on host:port (0: a free port) and calls handle(req, res, body) once the body is in;
// a body over maxBody closes the connection.
export async function listen(host, port, maxBody, handle) {
  const server = http.createServer({ keepAliveTimeout: 30000 }, (req, res) => {
    const parts = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBody) { req.destroy(); return; }
      parts.push(c);
    });
    req.on('end', () => handle(req, res, parts.length === 1 ? parts[0] : Buffer.concat(parts)));
    req.on('error', () => {});
  });
  server.on('clientError', (err, socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return server;
}

// `node tests/mock/<name>.mjs --port N ...` when the module is the program (metaUrl is the
// module's import.meta.url): starts the mock, prints "listening PORT", stops on SIGTERM/SIGINT.
export async function runCli(name, metaUrl, startMock, parseArgs) {
  if (!process.argv[1] || metaUrl !== pathToFileURL(process.argv[1]).href) return;
  let mock;
  try {
    mock = await startMock(parseArgs(process.argv.slice(2)));
  } catch (e) {
    process.stderr.write(`${name}: ${e.message}\n`);
    process.exit(2);
  }
  process.stdout.write(`listening ${mock.port}\n`);
  const stop = () => mock.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
