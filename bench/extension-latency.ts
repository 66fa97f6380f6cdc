/**
 * Latency the extension adds per request, its resident memory while proxying, and its binary size.
 *
 * Latency: the same POST (1 KB and 100 KB bodies, echoed back) to the same upstream service stand-in, two ways,
 * alternating request by request:
 * - direct: the client itself speaks mTLS (the function's leaf, the mesh CA, the SPIFFE check) to the mesh gateway
 *   stand-in with the upstream's SNI;
 * - extension: plain HTTP to 127.0.0.1:<localPort>, the extension speaks mTLS to the same gateway.
 * Both cross the same gateway, so the difference is the extension alone: one more local hop and its copy loop.
 * "keep-alive" reuses one connection on each side (the extension then reuses its TLS connection too); "new
 * connection" opens one per request (on the extension path: a local TCP connect plus the extension's TLS handshake).
 *
 * Memory: VmRSS of the extension from /proc/<pid>/status, sampled while it proxies, and VmHWM (peak) at the end,
 * after a burst of CONCURRENT parallel 100 KB requests on new connections.
 *
 * Run: npx tsx bench/extension-latency.ts
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import { ExtensionProcess, freePort, post } from '../test/constructs/function/extension-fixture';
import { ms, quantile, startBenchMesh, UPSTREAM, type BenchMesh } from './extension-stand-ins';

const WARMUP = 50;
const ITERATIONS = { keepAlive: 1000, newConnection: 300 };
const CONCURRENT = 64;

function directPost(mesh: BenchMesh, body: Buffer, agent: https.Agent | false): Promise<number> {
  const [host, port] = mesh.gateway.address.split(':');
  const want = mesh.ca.spiffeId(UPSTREAM);
  return new Promise<number>((resolve, reject) => {
    const req = https.request(
      {
        host,
        port: Number(port),
        method: 'POST',
        path: '/',
        agent,
        servername: mesh.ca.sni(UPSTREAM),
        cert: mesh.identity.certPem,
        key: mesh.identity.privateKeyPem,
        ca: mesh.identity.rootCertPem,
        // The chain is verified against `ca`; the identity is the SPIFFE URI SAN, not a DNS name.
        checkServerIdentity: (_, cert) => (cert.subjectaltname === `URI:${want}` ? undefined : new Error(`peer is ${cert.subjectaltname}`)),
        headers: { 'content-length': body.length },
      },
      (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function vm(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const mesh = await startBenchMesh();
  const size = fs.statSync(mesh.binary).size;
  const port = await freePort();
  const extension = ExtensionProcess.start(mesh.binary, mesh.environment(port));
  await mesh.lambda.waitFor('next');
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(vm(extension.pid, 'VmRSS')), 50);
  const rows: string[] = [];
  try {
    for (const kb of [1, 100]) {
      const body = crypto.randomBytes(kb * 1024);
      for (const mode of ['keepAlive', 'newConnection'] as const) {
        const keep = mode === 'keepAlive';
        const plainAgent = keep ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
        const tlsAgent = keep ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : false;
        const direct: number[] = [];
        const through: number[] = [];
        for (let i = 0; i < WARMUP + ITERATIONS[mode]; i++) {
          let t = performance.now();
          const n1 = await directPost(mesh, body, tlsAgent);
          const d = performance.now() - t;
          t = performance.now();
          const reply = await post(port, body, plainAgent);
          const e = performance.now() - t;
          if (n1 !== body.length || reply.body.length !== body.length) {
            throw new Error(`short answer: ${n1} / ${reply.body.length} of ${body.length}`);
          }
          if (i >= WARMUP) {
            direct.push(d);
            through.push(e);
          }
        }
        if (plainAgent) plainAgent.destroy();
        if (tlsAgent) tlsAgent.destroy();
        const label = `${String(kb).padStart(3)} KB, ${keep ? 'keep-alive    ' : 'new connection'}`;
        rows.push(
          `${label} | ${ms(quantile(direct, 0.5)).padStart(9)} | ${ms(quantile(through, 0.5)).padStart(9)} | ${ms(quantile(through, 0.5) - quantile(direct, 0.5)).padStart(9)}` +
            ` | ${ms(quantile(direct, 0.99)).padStart(9)} | ${ms(quantile(through, 0.99)).padStart(9)} | ${ITERATIONS[mode]}`,
        );
      }
    }
    const burstBody = crypto.randomBytes(100 * 1024);
    await Promise.all(Array.from({ length: CONCURRENT }, () => post(port, burstBody, false, 30_000)));
    rss.push(vm(extension.pid, 'VmRSS'));
  } finally {
    clearInterval(sampler);
  }
  // VmHWM is only brought up to date at some kernel events: the larger of it and the samples is the peak seen.
  const peak = Math.max(vm(extension.pid, 'VmHWM'), ...rss);
  mesh.lambda.shutdown();
  await extension.exited();
  await mesh.close();
  const stats = extension.logsOf('shutdown')[0];

  console.log(`Added latency per request through the extension (ms), stand-ins on 127.0.0.1 (${os.cpus().length} CPUs)`);
  console.log('body, connection     | direct p50 | ext. p50 | added p50 | direct p99 | ext. p99 | requests');
  rows.forEach((r) => console.log(r));
  console.log('goal: <= 1 ms median added on a reused connection');
  console.log(`binary: ${(size / 1024 / 1024).toFixed(2)} MB (CGO_ENABLED=0, -ldflags='-s -w', -trimpath); goal < 10 MB`);
  console.log(`resident memory while proxying: median ${quantile(rss, 0.5).toFixed(1)} MB, max sampled ${Math.max(...rss).toFixed(1)} MB, peak (incl. ${CONCURRENT} parallel 100 KB requests) ${peak.toFixed(1)} MB; goal < 20 MB`);
  console.log(`extension counters at shutdown: connections ${String(stats?.connections)}, handshakeFailures ${String(stats?.handshakeFailures)}, bytesOut ${String(stats?.bytesOut)}, bytesIn ${String(stats?.bytesIn)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
