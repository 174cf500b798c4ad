// A tiny static server for the playground: serves web/ at / and the repository's
// presets/ at /presets/ (so preset edits are live without a rebuild). No dependencies.
//
//   node scripts/serve.mjs            -> http://localhost:8080/
//   PORT=0 node scripts/serve.mjs     -> a free port, printed
//
// Tests import { startServer } and call it with port 0.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

// URL prefix -> directory on disk; the first prefix that matches wins.
const DEFAULT_MOUNTS = [
  ['/presets/', path.join(ROOT, 'presets')],
  ['/', path.join(ROOT, 'web')],
];

function resolveFile(mounts, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  for (const [prefix, dir] of mounts) {
    if (!decoded.startsWith(prefix)) continue;
    const rel = decoded.slice(prefix.length);
    const file = path.resolve(dir, rel);
    // Never serve anything outside the mounted directory.
    if (file !== dir && !file.startsWith(dir + path.sep)) return null;
    let stat;
    try {
      stat = fs.statSync(file);
    } catch {
      return null;
    }
    if (stat.isDirectory()) {
      const index = path.join(file, 'index.html');
      return fs.existsSync(index) ? index : null;
    }
    return stat.isFile() ? file : null;
  }
  return null;
}

/** Starts the server; resolves to { server, url, port, close() }. */
export function startServer({ port = 8080, host = '127.0.0.1', mounts = DEFAULT_MOUNTS, quiet = true } = {}) {
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url, 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const file = resolveFile(mounts, urlPath);
    if (!file) {
      const hint = urlPath.startsWith('/pkg/') || urlPath.startsWith('/vendor/') || urlPath.startsWith('/assets/')
        ? ' (build output missing: run `npm run build`)'
        : '';
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`404 not found: ${urlPath}${hint}\n`);
      if (!quiet) console.warn(`404 ${urlPath}${hint}`);
      return;
    }
    const headers = {
      'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': fs.statSync(file).size,
      'Cache-Control': 'no-cache',
    };
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    fs.createReadStream(file)
      .on('error', (err) => res.destroy(err))
      .pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const actual = server.address().port;
      const shownHost = host === '127.0.0.1' || host === '0.0.0.0' ? 'localhost' : host;
      resolve({
        server,
        port: actual,
        url: `http://${shownHost}:${actual}/`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

// Run directly: serve until interrupted.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const raw = process.env.PORT ?? '8080';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: PORT must be an integer 0..65535, got "${raw}"`);
    process.exit(1);
  }
  const host = process.env.HOST ?? '127.0.0.1';
  startServer({ port, host, quiet: false }).then(
    ({ url }) => {
      console.log(`CNN Playground: ${url}`);
      console.log(`Benchmark page: ${url}bench.html`);
      console.log('Press Ctrl+C to stop.');
    },
    (err) => {
      console.error(`serve: cannot listen on ${host}:${port}: ${err.message}`);
      process.exit(1);
    },
  );
}
