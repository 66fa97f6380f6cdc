/**
 * `npm test`: the linter, the type check and Jest, started together so that the machine's cores are busy
 * from the start (ESLint and tsc use one core each; Jest runs its workers beside them). Jest's output streams as it
 * comes; ESLint's and tsc's are printed when they finish. Exits non-zero when any of the three fails, after all
 * three have finished, so one run reports every problem. Extra arguments go to Jest
 * (`npm test -- test/lib/environment.test.ts`).
 */
import { spawn } from 'child_process';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
const bin = (name: string): string => path.join(root, 'node_modules', '.bin', name);

interface Outcome {
  readonly name: string;
  readonly code: number;
  readonly seconds: number;
}

function run(name: string, command: string, args: readonly string[], streamed: boolean): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: streamed ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => chunks.push(c));
    child.stderr?.on('data', (c: Buffer) => chunks.push(c));
    const finish = (code: number): void => {
      const seconds = (Date.now() - started) / 1000;
      if (!streamed) {
        const text = Buffer.concat(chunks).toString('utf8').trimEnd();
        process.stdout.write(`\n--- ${name} (${code === 0 ? 'passed' : 'FAILED'}, ${seconds.toFixed(1)} s)\n${text ? `${text}\n` : ''}`);
      }
      resolve({ name, code, seconds });
    };
    child.on('error', (e) => {
      chunks.push(Buffer.from(`could not start ${command}: ${e.message}`));
      finish(127);
    });
    child.on('close', (code, signal) => finish(code ?? (signal ? 128 : 1)));
  });
}

async function main(): Promise<void> {
  const outcomes = await Promise.all([
    run('lint (eslint)', bin('eslint'), ['--max-warnings', '0', '.'], false),
    run('typecheck (tsc)', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'], false),
    run('jest', bin('jest'), process.argv.slice(2), true),
  ]);
  console.log(`\n${outcomes.map((o) => `${o.name}: ${o.code === 0 ? 'passed' : `FAILED (exit ${o.code})`} in ${o.seconds.toFixed(1)} s`).join('\n')}`);
  process.exitCode = outcomes.find((o) => o.code !== 0)?.code ?? 0;
}

void main();
