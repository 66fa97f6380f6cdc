/**
 * Extension init: from process start to its first `event/next` (the moment Lambda may send the first invoke), median
 * and p99 over RUNS cold starts, against the start-up it replaces, run in the same process on the same stand-ins.
 *
 * The baseline is the `run.sh` handler of the first design: on every cold start it starts `consul connect proxy
 * -service lambda-model-runner-$$` in the background, checks every 0.5 s for up to 5 s whether the proxy's port
 * accepts connections (`nc -z`), then starts the runtime. Here:
 * - the proxy it starts is this extension binary, with the same configuration (it reads the same bundle from the
 *   same SSM stand-in and binds the same kind of listener), so both sides pay the same proxy start-up;
 * - `nc` is not installed on this machine: the check is bash's `/dev/tcp` in a subshell, which forks as `nc -z`
 *   would (and skips nc's exec, a little in the baseline's favour);
 * - the runtime is a bash builtin that sends the Runtime API's `GET /2018-06-01/runtime/invocation/next` (the
 *   runtime's "ready"); the Python interpreter's own start-up is left out of the baseline, in its favour, as it is
 *   not part of what the extension replaces.
 *
 * Run: npx tsx bench/extension-init.ts
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ExtensionProcess, freePort, isListening } from '../test/constructs/function/extension-fixture';
import { ms, quantile, startBenchMesh, type BenchMesh } from './extension-stand-ins';

const RUNS = 60;

const RUN_SH = `#!/bin/bash
# run.sh of the first design: start the Consul proxy, wait until its port accepts connections, start the runtime.
"$PROXY" -service "lambda-model-runner-$$" &
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null; then
    break
  fi
  sleep 0.5
done
exec 3<>"/dev/tcp/\${AWS_LAMBDA_RUNTIME_API%:*}/\${AWS_LAMBDA_RUNTIME_API#*:}"
printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: runtime\\r\\n\\r\\n' >&3
read -r _ <&3
`;

async function extensionRun(mesh: BenchMesh, n: number): Promise<number> {
  const port = await freePort();
  const start = performance.now();
  const extension = ExtensionProcess.start(mesh.binary, mesh.environment(port));
  const next = await mesh.lambda.waitFor('next', n);
  mesh.lambda.shutdown();
  if ((await extension.exited()) !== 0) {
    throw new Error(`extension failed: ${JSON.stringify(extension.logs)}`);
  }
  return next.at - start;
}

async function baselineRun(mesh: BenchMesh, script: string, n: number, proxyNexts: number): Promise<number> {
  const port = await freePort();
  const start = performance.now();
  const child = spawn('bash', [script], { env: { ...mesh.environment(port), PROXY: mesh.binary, PROXY_PORT: String(port) }, stdio: 'ignore', detached: true });
  const ready = await mesh.lambda.waitFor('runtime/next', n, 10_000);
  // The proxy stays up as it would in the function; end it (SHUTDOWN) and the script's process group.
  await mesh.lambda.waitFor('next', proxyNexts);
  mesh.lambda.shutdown();
  process.kill(-child.pid!, 'SIGKILL');
  while (await isListening(port)) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return ready.at - start;
}

async function main(): Promise<void> {
  const mesh = await startBenchMesh();
  const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-run-sh-')), 'run.sh');
  fs.writeFileSync(script, RUN_SH, { mode: 0o755 });
  const extension: number[] = [];
  const baseline: number[] = [];
  try {
    // Interleaved, so that load from elsewhere on the machine hits both alike.
    for (let i = 1; i <= RUNS; i++) {
      extension.push(await extensionRun(mesh, 2 * i - 1));
      baseline.push(await baselineRun(mesh, script, i, 2 * i));
    }
  } finally {
    await mesh.close();
  }
  const row = (name: string, xs: number[]): string => `${name.padEnd(44)} | ${ms(quantile(xs, 0.5)).padStart(8)} | ${ms(quantile(xs, 0.99)).padStart(8)} | ${ms(Math.min(...xs)).padStart(8)}`;
  console.log(`Extension init, process start to ready, ${RUNS} cold starts each, stand-ins on 127.0.0.1 (${os.cpus().length} CPUs)`);
  console.log(`${'start-up'.padEnd(44)} | median ms |   p99 ms |   min ms`);
  console.log(row('extension: start to first event/next', extension));
  console.log(row('baseline run.sh: start to runtime ready', baseline));
  console.log(`speed-up (median): ${(quantile(baseline, 0.5) / quantile(extension, 0.5)).toFixed(1)}x; goal: extension median <= 20 ms and >= 10x`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
