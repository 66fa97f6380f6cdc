/**
 * The sample backends (lib/sample-services): each service started on an ephemeral port, in-process and as the
 * esbuild bundle the image runs, exercised with real HTTP and TCP requests.
 */
import { type ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { builtinModules } from 'module';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type * as Esbuild from 'esbuild';
import type { LogRecord } from '../../lib/sample-services/http';
import { type RunningService, type ServiceName, type StartOptions, startService } from '../../lib/sample-services/server';

const root = path.resolve(__dirname, '..', '..');
const sources = path.join(root, 'lib', 'sample-services');
const KIB = 1024;

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: unknown;
}

interface Started {
  readonly service: RunningService;
  readonly logs: LogRecord[];
}

const started: RunningService[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }
  await Promise.all(started.splice(0).map((service) => service.close()));
});

async function start(name: ServiceName, options: StartOptions = {}): Promise<Started> {
  const logs: LogRecord[] = [];
  const service = await startService(name, { port: 0, log: (record) => logs.push(record), ...options });
  started.push(service);
  return { service, logs };
}

function request(port: number, method: string, urlPath: string, body?: string, options: http.RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) as unknown });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function postJson(port: number, urlPath: string, value: unknown, agent?: http.Agent): Promise<Answer> {
  return request(port, 'POST', urlPath, JSON.stringify(value), { headers: { 'content-type': 'application/json' }, ...(agent ? { agent } : {}) });
}

async function waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) {
      return found;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    // The server may reset a connection it closes with unread data; that is a close too.
    socket.on('error', () => undefined);
    if (socket.destroyed) {
      resolve();
    } else {
      socket.once('close', () => resolve());
    }
  });
}

/** The documented formula, computed here from the hex digest, independently of the service's code. */
function expectedFeatures(id: string): Record<string, number> {
  const hex = createHash('sha256').update(id, 'utf8').digest('hex');
  const word = (i: number): number => parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  return {
    recency_days: word(0) % 365,
    orders_30d: word(1) % 20,
    avg_basket: Number((5 + (word(2) % 20000) / 100).toFixed(2)),
    tenure_years: Number(((word(3) % 100) / 10).toFixed(1)),
  };
}

const decimals = (n: number): number => (String(n).split('.')[1] ?? '').length;

describe('feature-store', () => {
  test('GET /features/<id> answers the documented features', async () => {
    const { service } = await start('feature-store');
    for (const id of ['customer-42', 'a', '7', 'A.b_c-9', 'x'.repeat(128)]) {
      const answer = await request(service.port, 'GET', `/features/${id}`);
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('application/json');
      expect(answer.body).toEqual({ entity_id: id, features: expectedFeatures(id) });
    }
  });

  test('features are deterministic and in range for many ids', async () => {
    const { service } = await start('feature-store');
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const id = `entity-${i}`;
      const first = await request(service.port, 'GET', `/features/${id}`);
      const again = await request(service.port, 'GET', `/features/${id}`);
      expect(again.body).toEqual(first.body);
      const { features } = first.body as { features: Record<string, number> };
      expect(Number.isInteger(features.recency_days) && features.recency_days >= 0 && features.recency_days <= 364).toBe(true);
      expect(Number.isInteger(features.orders_30d) && features.orders_30d >= 0 && features.orders_30d <= 19).toBe(true);
      expect(features.avg_basket >= 5 && features.avg_basket <= 204.99 && decimals(features.avg_basket) <= 2).toBe(true);
      expect(features.tenure_years >= 0 && features.tenure_years <= 9.9 && decimals(features.tenure_years) <= 1).toBe(true);
      seen.add(JSON.stringify(features));
    }
    expect(seen.size).toBe(60);
  });

  test('fails with 400 when the entity id is not valid', async () => {
    const { service } = await start('feature-store');
    for (const segment of ['', '.hidden', '-x', '_x', 'a%20b', 'a%2Fb', '%E0%A4%A', 'x'.repeat(129), 'caf%C3%A9']) {
      const answer = await request(service.port, 'GET', `/features/${segment}`);
      expect({ segment, status: answer.status }).toEqual({ segment, status: 400 });
      expect(answer.body).toEqual({ error: expect.stringMatching(/entity id/) });
    }
  });

  test('GET /features/unknown-<x> answers 404, and POST cannot create it', async () => {
    const { service } = await start('feature-store');
    expect(await request(service.port, 'GET', '/features/unknown-customer')).toMatchObject({ status: 404, body: { error: expect.any(String) } });
    const features = { recency_days: 1, orders_30d: 1, avg_basket: 1, tenure_years: 1 };
    expect((await postJson(service.port, '/features/unknown-customer', { features })).status).toBe(404);
    expect((await request(service.port, 'GET', '/features/unknown-customer')).status).toBe(404);
  });

  test('POST /features/<id> stores an override that GET then answers', async () => {
    const { service } = await start('feature-store');
    const features = { recency_days: 3, orders_30d: 250, avg_basket: 12.5, tenure_years: -1 };
    const answer = await postJson(service.port, '/features/customer-7', { features, note: 'extra keys are ignored' });
    expect(answer).toMatchObject({ status: 200, body: { entity_id: 'customer-7', features, updated: true } });
    expect((await request(service.port, 'GET', '/features/customer-7')).body).toEqual({ entity_id: 'customer-7', features });
    expect((await request(service.port, 'GET', '/features/customer-8')).body).toEqual({ entity_id: 'customer-8', features: expectedFeatures('customer-8') });
  });

  test('fails with 400 when the override is not the four features as finite numbers', async () => {
    const { service } = await start('feature-store');
    const good = { recency_days: 1, orders_30d: 2, avg_basket: 3, tenure_years: 4 };
    const bodies = [
      '{"features": {"recency_days": 1, "orders_30d": 2, "avg_basket": 3}}',
      '{"features": {"recency_days": "1", "orders_30d": 2, "avg_basket": 3, "tenure_years": 4}}',
      '{"features": {"recency_days": 1e999, "orders_30d": 2, "avg_basket": 3, "tenure_years": 4}}',
      '{"features": {"recency_days": null, "orders_30d": 2, "avg_basket": 3, "tenure_years": 4}}',
      JSON.stringify({ features: { ...good, churn: 1 } }),
      '{"features": [1, 2, 3, 4]}',
      JSON.stringify(good),
      '[]',
      '',
      '{"features": ',
    ];
    for (const body of bodies) {
      const answer = await request(service.port, 'POST', '/features/customer-1', body);
      expect({ body, status: answer.status }).toEqual({ body, status: 400 });
      expect(answer.body).toEqual({ error: expect.any(String) });
    }
    expect((await request(service.port, 'GET', '/features/customer-1')).body).toEqual({ entity_id: 'customer-1', features: expectedFeatures('customer-1') });
  });

  test('fails with 413 when the body is over 64 KiB, and accepts exactly 64 KiB', async () => {
    const { service } = await start('feature-store');
    const features = { recency_days: 1, orders_30d: 2, avg_basket: 3, tenure_years: 4 };
    const padded = (size: number): string => {
      const base = JSON.stringify({ features, pad: '' });
      return JSON.stringify({ features, pad: 'x'.repeat(size - base.length) });
    };
    expect(Buffer.byteLength(padded(64 * KIB))).toBe(64 * KIB);
    expect((await request(service.port, 'POST', '/features/big', padded(64 * KIB))).status).toBe(200);
    const tooBig = await request(service.port, 'POST', '/features/big', padded(64 * KIB + 1));
    expect(tooBig).toMatchObject({ status: 413, body: { error: expect.stringMatching(/65536 bytes/) } });
    // Without a content-length too: the size counts, not the header.
    const chunked = await request(service.port, 'POST', '/features/big', padded(200 * KIB), { headers: { 'transfer-encoding': 'chunked' } });
    expect(chunked.status).toBe(413);
  });

  test('fails with 413 at once when content-length announces more than 1 MiB', async () => {
    const { service } = await start('feature-store');
    const socket = await connect(service.port);
    const reply = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      socket.on('close', () => resolve(text));
    });
    // Only the headers: the service must answer without waiting for the body.
    socket.write('POST /features/big HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n');
    expect(await reply).toMatch(/^HTTP\/1\.1 413 [\s\S]*connection: close[\s\S]*\{"error":"the request body must be at most 65536 bytes"\}$/i);
  });

  test('answers 404 for other paths and 405 with an allow header for other methods', async () => {
    const { service } = await start('feature-store');
    for (const urlPath of ['/', '/features', '/features/a/b', '/feature/a', '/healthz/x']) {
      expect(await request(service.port, 'GET', urlPath)).toMatchObject({ status: 404, body: { error: expect.any(String) } });
    }
    const del = await request(service.port, 'DELETE', '/features/a');
    expect(del).toMatchObject({ status: 405, headers: { allow: 'GET, POST' }, body: { error: expect.any(String) } });
    expect(await request(service.port, 'POST', '/healthz', '{}')).toMatchObject({ status: 405, headers: { allow: 'GET' } });
  });

  test('GET /healthz answers {"status": "ok"}', async () => {
    const { service } = await start('feature-store');
    expect(await request(service.port, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  test('logs one JSON line per request with method, path, status and duration, never the body', async () => {
    const { service, logs } = await start('feature-store');
    expect(logs[0]).toEqual({ service: 'feature-store', event: 'listening', host: '127.0.0.1', port: service.port });
    await request(service.port, 'GET', '/features/customer-1?trace=secret-query');
    await postJson(service.port, '/features/customer-1', { features: { recency_days: 'secret-body' } });
    const lines = await waitFor('two request lines', () => {
      const found = logs.filter((line) => line.event === 'request');
      return found.length === 2 ? found : undefined;
    });
    expect(lines).toEqual([
      { service: 'feature-store', event: 'request', method: 'GET', path: '/features/customer-1', status: 200, duration_ms: expect.any(Number) },
      { service: 'feature-store', event: 'request', method: 'POST', path: '/features/customer-1', status: 400, duration_ms: expect.any(Number) },
    ]);
    expect(JSON.stringify(logs)).not.toMatch(/secret/);
  });

  test('keeps at most 10,000 overrides, forgetting the oldest', async () => {
    const { service } = await start('feature-store');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const features = { recency_days: 1, orders_30d: 1, avg_basket: 1, tenure_years: 1 };
    try {
      for (let batch = 0; batch <= 10_000; batch += 500) {
        const ids = Array.from({ length: Math.min(500, 10_001 - batch) }, (_, i) => `e${batch + i}`);
        const answers = await Promise.all(ids.map((id) => postJson(service.port, `/features/${id}`, { features }, agent)));
        expect(answers.every((answer) => answer.status === 200)).toBe(true);
      }
    } finally {
      agent.destroy();
    }
    expect((await request(service.port, 'GET', '/features/e0')).body).toEqual({ entity_id: 'e0', features: expectedFeatures('e0') });
    expect((await request(service.port, 'GET', '/features/e1')).body).toEqual({ entity_id: 'e1', features });
    expect((await request(service.port, 'GET', '/features/e10000')).body).toEqual({ entity_id: 'e10000', features });
  });
});

describe('result-writer', () => {
  test('POST /results stores a result that GET /results/<id> answers (the latest one)', async () => {
    const { service } = await start('result-writer');
    const first = await postJson(service.port, '/results', { entity_id: 'customer-42', score: 0.25, model: 'model-a-v1' });
    expect(first).toMatchObject({ status: 201, body: { stored: true, id: expect.any(Number) } });
    const second = await postJson(service.port, '/results', { entity_id: 'customer-42', score: 1 });
    const other = await postJson(service.port, '/results', { entity_id: 'customer-43', score: 0 });
    const ids = [first, second, other].map((answer) => (answer.body as { id: number }).id);
    expect(ids[1]).toBeGreaterThan(ids[0]);
    expect(ids[2]).toBeGreaterThan(ids[1]);
    const latest = await request(service.port, 'GET', '/results/customer-42');
    expect(latest).toMatchObject({ status: 200, body: { entity_id: 'customer-42', score: 1, id: ids[1] } });
    const { stored_at: storedAt } = latest.body as { stored_at: string };
    expect(new Date(storedAt).toISOString()).toBe(storedAt);
    expect(Object.keys(latest.body as object).sort()).toEqual(['entity_id', 'id', 'score', 'stored_at']);
  });

  test('fails with 400 when the result is not valid', async () => {
    const { service } = await start('result-writer');
    const bodies = [
      '{"score": 0.5}',
      '{"entity_id": ".x", "score": 0.5}',
      '{"entity_id": 42, "score": 0.5}',
      '{"entity_id": "a", "score": -0.01}',
      '{"entity_id": "a", "score": 1.01}',
      '{"entity_id": "a", "score": "0.5"}',
      '{"entity_id": "a", "score": null}',
      '{"entity_id": "a", "score": 1e999}',
      '{"entity_id": "a"}',
      '[{"entity_id": "a", "score": 0.5}]',
      'not json',
      '',
    ];
    for (const body of bodies) {
      const answer = await request(service.port, 'POST', '/results', body);
      expect({ body, status: answer.status }).toEqual({ body, status: 400 });
      expect(answer.body).toEqual({ error: expect.any(String) });
    }
    expect((await request(service.port, 'GET', '/results/a')).status).toBe(404);
  });

  test('GET /results/<id> answers 404 for an entity without results and 400 for an invalid id', async () => {
    const { service } = await start('result-writer');
    expect(await request(service.port, 'GET', '/results/nobody')).toMatchObject({ status: 404, body: { error: expect.any(String) } });
    expect(await request(service.port, 'GET', '/results/..')).toMatchObject({ status: 400, body: { error: expect.any(String) } });
  });

  test('fails with 413 when the body is over 64 KiB', async () => {
    const { service } = await start('result-writer');
    const answer = await postJson(service.port, '/results', { entity_id: 'a', score: 0.5, pad: 'x'.repeat(64 * KIB) });
    expect(answer).toMatchObject({ status: 413, body: { error: expect.any(String) } });
  });

  test('answers 404 for other paths, 405 with an allow header for other methods, and GET /healthz', async () => {
    const { service } = await start('result-writer');
    expect((await request(service.port, 'GET', '/result')).status).toBe(404);
    expect(await request(service.port, 'GET', '/results')).toMatchObject({ status: 405, headers: { allow: 'POST' } });
    expect(await request(service.port, 'POST', '/results/a', '{}')).toMatchObject({ status: 405, headers: { allow: 'GET' } });
    expect(await request(service.port, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  test('keeps the results of at most 10,000 entities, forgetting the oldest', async () => {
    const { service } = await start('result-writer');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    try {
      for (let batch = 0; batch <= 10_000; batch += 500) {
        const ids = Array.from({ length: Math.min(500, 10_001 - batch) }, (_, i) => `e${batch + i}`);
        const answers = await Promise.all(ids.map((id) => postJson(service.port, '/results', { entity_id: id, score: 0.5 }, agent)));
        expect(answers.every((answer) => answer.status === 201)).toBe(true);
      }
    } finally {
      agent.destroy();
    }
    expect((await request(service.port, 'GET', '/results/e0')).status).toBe(404);
    expect((await request(service.port, 'GET', '/results/e1')).status).toBe(200);
    expect((await request(service.port, 'GET', '/results/e10000')).status).toBe(200);
  });
});

describe('log-service', () => {
  const records = (logs: LogRecord[]): LogRecord[] => logs.filter((line) => line.record !== undefined);

  test('logs each NDJSON record as one JSON line with the remote address', async () => {
    const { service, logs } = await start('log-service');
    const socket = await connect(service.port);
    const remote = `127.0.0.1:${socket.localPort}`;
    socket.write('{"level":"info","msg":"one"}\n{"msg":"two", "n"');
    socket.write(': 2}\r\n\n{"msg":"three","nested":{"a":[1,2]}}\n{"msg":"last, without a newline"}');
    socket.end();
    await closed(socket);
    const lines = await waitFor('the connection_closed line', () => (logs.some((line) => line.event === 'connection_closed') ? records(logs) : undefined));
    expect(lines).toEqual([
      { service: 'log-service', remote, record: { level: 'info', msg: 'one' } },
      { service: 'log-service', remote, record: { msg: 'two', n: 2 } },
      { service: 'log-service', remote, record: { msg: 'three', nested: { a: [1, 2] } } },
      { service: 'log-service', remote, record: { msg: 'last, without a newline' } },
    ]);
    expect(logs.find((line) => line.event === 'connection_closed')).toMatchObject({ remote, records: 4, invalid: 0 });
  });

  test('logs invalid lines as warnings without their content and keeps the connection', async () => {
    const { service, logs } = await start('log-service');
    const socket = await connect(service.port);
    socket.write('secret not json\n[1,"secret"]\n"secret"\n42\n');
    socket.write(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x0a]));
    socket.write('{"after":"invalid lines"}\n');
    await waitFor('the record after the invalid lines', () => records(logs).find((line) => line.record !== undefined));
    expect(socket.destroyed).toBe(false);
    socket.end();
    await closed(socket);
    await waitFor('the connection_closed line', () => logs.find((line) => line.event === 'connection_closed'));
    const warnings = logs.filter((line) => line.event === 'invalid_record');
    expect(warnings.map((line) => line.reason)).toEqual(['not UTF-8 JSON', 'not a JSON object', 'not a JSON object', 'not a JSON object', 'not UTF-8 JSON']);
    expect(warnings.every((line) => line.level === 'warn' && typeof line.bytes === 'number')).toBe(true);
    expect(logs.find((line) => line.event === 'connection_closed')).toMatchObject({ records: 1, invalid: 5 });
    expect(JSON.stringify(logs)).not.toMatch(/secret/);
  });

  test('closes the connection when a line is over 64 KiB, and accepts exactly 64 KiB', async () => {
    const { service, logs } = await start('log-service');
    const line = (size: number): string => JSON.stringify({ pad: 'x'.repeat(size - '{"pad":""}'.length) });
    const socket = await connect(service.port);
    socket.write(`${line(64 * KIB)}\n`);
    await waitFor('the 64 KiB record', () => records(logs)[0]);
    socket.write(line(64 * KIB + 1));
    await closed(socket);
    await waitFor('the connection_closed line', () => logs.find((l) => l.event === 'connection_closed'));
    expect(logs.find((l) => l.event === 'line_too_long')).toMatchObject({ level: 'warn', max_bytes: 64 * KIB });
    expect(logs.find((l) => l.event === 'connection_closed')).toMatchObject({ reason: 'line too long', records: 1 });
  });

  test('closes connections beyond 256 at once', async () => {
    const { service, logs } = await start('log-service');
    const open = await Promise.all(Array.from({ length: 256 }, () => connect(service.port)));
    try {
      const extra = await connect(service.port);
      await closed(extra);
      expect(logs.find((line) => line.event === 'connection_rejected')).toMatchObject({ level: 'warn', reason: 'too many connections' });
      expect(open.every((socket) => !socket.destroyed)).toBe(true);
      // A freed slot is taken again.
      open.pop()!.end();
      await waitFor('a closed connection', () => logs.find((line) => line.event === 'connection_closed'));
      const next = await connect(service.port);
      open.push(next);
      next.write('{"msg":"in again"}\n');
      await waitFor('the record', () => records(logs)[0]);
    } finally {
      open.forEach((socket) => socket.destroy());
    }
  });

  test('closes a connection idle for the idle timeout', async () => {
    const { service, logs } = await start('log-service', { idleTimeoutMs: 200 });
    const socket = await connect(service.port);
    const began = Date.now();
    await closed(socket);
    expect(Date.now() - began).toBeGreaterThanOrEqual(150);
    await waitFor('the connection_closed line', () => logs.find((line) => line.event === 'connection_closed'));
    expect(logs.find((line) => line.event === 'connection_closed')).toMatchObject({ reason: 'idle' });
  });

  test('close() lets a client finish the line it is sending', async () => {
    const { service, logs } = await start('log-service');
    const socket = await connect(service.port);
    socket.write('{"msg":"half');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = service.close();
    socket.end(' and the rest"}\n');
    await closing;
    expect(records(logs)).toEqual([{ service: 'log-service', remote: expect.any(String), record: { msg: 'half and the rest' } }]);
  });
});

describe('graceful shutdown in-process', () => {
  test('close() lets an in-flight request finish, closes its keep-alive connection, and refuses new connections', async () => {
    const { service } = await start('result-writer');
    const body = JSON.stringify({ entity_id: 'customer-1', score: 0.5 });
    // A client that keeps connections open, as the sidecar proxy does: the service must still close them.
    const agent = new http.Agent({ keepAlive: true });
    const answer = new Promise<Answer>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: service.port, method: 'POST', path: '/results', agent, headers: { 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: undefined }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 300);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = service.close();
    expect(await answer).toMatchObject({ status: 201, headers: { connection: 'close' } });
    const began = Date.now();
    await closing;
    expect(Date.now() - began).toBeLessThan(1000);
    agent.destroy();
    await expect(connect(service.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  test('close() cuts a request still in progress after the shutdown timeout', async () => {
    const { service } = await start('feature-store', { shutdownTimeoutMs: 200 });
    const socket = await connect(service.port);
    socket.write('POST /features/a HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const began = Date.now();
    await service.close();
    expect(Date.now() - began).toBeGreaterThanOrEqual(150);
    await closed(socket);
  });
});

describe('server.js (the esbuild bundle) and the CLI', () => {
  let dir: string;
  let bundle: string;
  let inputs: string[];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-sample-services-'));
    bundle = path.join(dir, 'server.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof Esbuild;
    const result = esbuild.buildSync({
      entryPoints: [path.join(sources, 'server.ts')], bundle: true, platform: 'node', target: 'node24', format: 'cjs', outfile: bundle, metafile: true,
    });
    inputs = Object.keys(result.metafile.inputs);
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  interface Child {
    readonly child: ChildProcess;
    readonly logs: LogRecord[];
    readonly exit: Promise<number | null>;
  }

  function run(command: string, args: readonly string[], env: Record<string, string> = {}): Child {
    const child = spawn(command, args, { cwd: dir, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const logs: LogRecord[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      lines.forEach((line) => logs.push(JSON.parse(line) as LogRecord));
    });
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, logs, exit };
  }

  // Not spawnSync: the services under check run in this process and must keep answering.
  async function runToExit(args: readonly string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const child = spawn('node', [bundle, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { status, stdout, stderr };
  }

  const listening = (child: Child): Promise<LogRecord> => waitFor('the listening line', () => child.logs.find((line) => line.event === 'listening'), 15_000);

  function freePort(): Promise<number> {
    return new Promise((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
  }

  test('the bundle is self-contained: it requires nothing but Node built-ins and runs from an empty directory', async () => {
    expect(inputs.length).toBeGreaterThan(0);
    expect(inputs.filter((input) => !path.resolve(root, input).startsWith(sources + path.sep))).toEqual([]);
    const required = [...fs.readFileSync(bundle, 'utf8').matchAll(/\brequire\(["']([^"']+)["']\)/g)].map((match) => match[1]);
    expect(required.length).toBeGreaterThan(0);
    expect(required.filter((name) => !builtinModules.includes(name.replace(/^node:/, '')))).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual(['server.js']);

    for (const name of ['feature-store', 'log-service', 'result-writer'] as const) {
      const server = run('node', ['server.js', name], { PORT: '0' });
      const line = await listening(server);
      expect(line).toEqual({ service: name, event: 'listening', host: '127.0.0.1', port: expect.any(Number) });
      const port = line.port as number;
      if (name === 'log-service') {
        const socket = await connect(port);
        socket.end('{"msg":"hello"}\n');
        await waitFor('the record', () => server.logs.find((l) => l.record !== undefined));
      } else {
        expect((await request(port, 'GET', '/healthz')).status).toBe(200);
      }
      server.child.kill('SIGTERM');
      expect(await server.exit).toBe(0);
    }
  });

  test('runs with tsx from the sources, as the README says', async () => {
    const server = run(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(sources, 'server.ts'), 'result-writer'], { PORT: '0', HOST: '127.0.0.1' });
    const line = await listening(server);
    expect((await postJson(line.port as number, '/results', { entity_id: 'a', score: 0.5 })).status).toBe(201);
    server.child.kill('SIGINT');
    expect(await server.exit).toBe(0);
  });

  test('healthcheck exits 0 against a running service, within 3 s', async () => {
    for (const name of ['feature-store', 'log-service', 'result-writer'] as const) {
      const { service } = await start(name);
      const began = Date.now();
      const check = await runToExit(['healthcheck', name], { PORT: String(service.port) });
      expect({ name, status: check.status, stderr: check.stderr }).toEqual({ name, status: 0, stderr: '' });
      expect(Date.now() - began).toBeLessThan(3000);
    }
  });

  test('healthcheck exits 1 when nothing listens', async () => {
    const port = await freePort();
    for (const name of ['feature-store', 'log-service'] as const) {
      const check = await runToExit(['healthcheck', name], { PORT: String(port) });
      expect({ name, status: check.status }).toEqual({ name, status: 1 });
      expect(check.stderr).toMatch(new RegExp(`^${name} is not healthy at 127\\.0\\.0\\.1:${port}\\n$`));
    }
  });

  test('healthcheck exits 1 when the service answers /healthz with an error', async () => {
    const server = http.createServer((_req, res) => res.writeHead(503).end()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const check = await runToExit(['healthcheck', 'result-writer'], { PORT: String(port) });
      expect(check.status).toBe(1);
    } finally {
      server.close();
    }
  });

  test('fails with a one-line usage message and exit 2 on unknown arguments', async () => {
    for (const args of [[], ['bogus'], ['feature-store', 'extra'], ['healthcheck'], ['healthcheck', 'bogus'], ['healthcheck', 'log-service', 'x'], ['constructor']]) {
      const result = await runToExit(args);
      expect({ args, status: result.status, stdout: result.stdout }).toEqual({ args, status: 2, stdout: '' });
      expect(result.stderr).toMatch(/^usage: server\.js [^\n]+\n$/);
    }
  });

  test('fails with exit 2 when PORT is not a port number', async () => {
    for (const port of ['abc', '-1', '65536', '80.5']) {
      const result = await runToExit(['feature-store'], { PORT: port });
      expect({ port, status: result.status }).toEqual({ port, status: 2 });
      expect(result.stderr).toMatch(/^PORT must be an integer from 0 to 65535/);
    }
  });

  test('SIGTERM lets an in-flight request finish, then the process exits 0', async () => {
    const server = run('node', ['server.js', 'result-writer'], { PORT: '0' });
    const port = (await listening(server)).port as number;
    const body = JSON.stringify({ entity_id: 'customer-1', score: 0.75 });
    let sendRest = (): void => undefined;
    const answer = new Promise<Answer>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/results', agent: false, headers: { 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      sendRest = () => req.end(body.slice(10));
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.child.kill('SIGTERM');
    await waitFor('the stopping line', () => server.logs.find((line) => line.event === 'stopping'));
    expect(server.child.exitCode).toBeNull();
    sendRest();
    expect(await answer).toMatchObject({ status: 201, headers: { connection: 'close' }, body: { stored: true } });
    expect(await server.exit).toBe(0);
    expect(server.logs.map((line) => line.event)).toEqual(['listening', 'stopping', 'request', 'stopped']);
  });
});
