#!/usr/bin/env node
// Serves the demo page (web/, after scripts/build_wasm.sh) on 127.0.0.1 only.
//
//   node scripts/serve_web.mjs [PORT]     # default 8000; then open http://127.0.0.1:8000/
//
// Browsers compile WebAssembly while downloading it only with the MIME type application/wasm,
// and load module workers only with a JavaScript type, which is why this sets the types.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ts": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
};

export const webRoot = fileURLToPath(new URL("../web", import.meta.url));

/** Starts a static file server for `root` on 127.0.0.1; port 0 picks a free port. */
export function serve(root = webRoot, port = 8000) {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://127.0.0.1").pathname);
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      response.writeHead(403).end("forbidden");
      return;
    }
    try {
      let info = await stat(file);
      if (info.isDirectory()) {
        file = join(file, "index.html");
        info = await stat(file);
      }
      response.writeHead(200, {
        "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
        "content-length": info.size,
        "cache-control": "no-cache",
      });
      if (request.method === "HEAD") {
        response.end();
      } else {
        createReadStream(file).pipe(response);
      }
    } catch {
      response.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 8000);
  const server = await serve(webRoot, port);
  console.log(`Serving ${webRoot} at http://127.0.0.1:${server.address().port}/ (Ctrl+C stops)`);
}
