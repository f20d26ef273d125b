/**
 * The floor for bench/chat: a bare node:http server that, for POST /api/chat, reads the body,
 * asks the same fake OpenAI server for the question's embedding (20 ms) and then the answer
 * (200 ms), and returns JSON — no auth, retrieval, storage or devhost. Prints `READY <port>`.
 *
 *   node dist/bench/chat-bare-server.js <fake base url>
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const base = new URL(process.argv[2] ?? 'http://127.0.0.1:0/v1');
const agent = new http.Agent({ keepAlive: true, maxSockets: 4096 });

function post(path: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: `${base.pathname.replace(/\/$/, '')}${path}`,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      try {
        const { message } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message: string };
        await post('/embeddings', {
          model: 'text-embedding-3-small',
          input: [message],
          dimensions: 512,
          encoding_format: 'float',
        });
        const out = (await post('/chat/completions', {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: message }],
        })) as {
          choices: { message: { content: string } }[];
          usage: unknown;
        };
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ answer: out.choices[0]?.message.content, usage: out.usage }));
      } catch {
        res.writeHead(500).end();
      }
    })();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
