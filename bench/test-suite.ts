/**
 * How long the README's test command (`npm test`: lint, typecheck, Jest) takes, and where the time goes.
 *
 * Runs `npm test` in this checkout as CI does (scripts/run-tests.ts: ESLint, tsc and Jest side by side), with every cache the suite keeps (Jest's transform cache, the
 * cfn-guard findings and handler bundles kept in $TMPDIR, Go's build cache) empty: TMPDIR and GOCACHE point to a
 * new directory. Prints the wall time against the budget (3 minutes on 2 cores), the CPU time, the phases, the
 * slowest suites and what cfn-guard took (lib/validation.ts logs each of its runs when LAMBDA_MESH_GUARD_LOG is set).
 *
 * Run: npx tsx bench/test-suite.ts                  (cold caches, as a fresh CI machine)
 *      npx tsx bench/test-suite.ts --warm           (then once more with the caches the first run left)
 *      npx tsx bench/test-suite.ts --baseline REV   (also the same for commit REV, in a temporary worktree)
 *
 * The machine's load average is printed first: on a shared machine every figure grows with it.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO_ROOT = path.resolve(__dirname, '..');
/** The budget for `npm test` on 2 cores. */
const BUDGET_SECONDS = 180;

interface Run {
  readonly label: string;
  readonly ok: boolean;
  readonly wallSeconds: number;
  readonly cpuSeconds?: number;
  readonly maxRssMb?: number;
  readonly phases: ReadonlyArray<[string, number]>;
  readonly suites: ReadonlyArray<[string, number]>;
  readonly guardRuns: number;
  readonly guardSeconds: number;
  readonly guardTemplates: number;
}

/** Runs `npm test` in `dir` with the caches under `cacheDir`, and reads what it printed. */
function runTests(label: string, dir: string, cacheDir: string): Run {
  fs.mkdirSync(cacheDir, { recursive: true });
  const guardLog = path.join(cacheDir, 'guard-runs.jsonl');
  fs.rmSync(guardLog, { force: true });
  const timeFile = path.join(cacheDir, 'time.txt');
  const timer = fs.existsSync('/usr/bin/time') ? ['/usr/bin/time', '-o', timeFile, '-f', '%U %S %M'] : [];
  const started = process.hrtime.bigint();
  // Jest prints its summary and a line per suite to stderr.
  const [command, ...args] = [...timer, 'npm', 'test'];
  const r = spawnSync(command, args, {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: {
      ...process.env,
      TMPDIR: cacheDir,
      GOCACHE: path.join(cacheDir, 'go-build'),
      LAMBDA_MESH_GUARD_LOG: guardLog,
      CDK_DISABLE_VERSION_CHECK: '1',
      FORCE_COLOR: '0',
    },
  });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const output = `${r.stdout}\n${r.stderr}`;
  let cpuSeconds: number | undefined;
  let maxRssMb: number | undefined;
  if (timer.length && fs.existsSync(timeFile)) {
    const [user, sys, rss] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    cpuSeconds = user + sys;
    maxRssMb = rss / 1024;
  }
  const suites = [...output.matchAll(/^(?:PASS|FAIL) (\S+)(?: \(([\d.]+) s\))?/gm)]
    .map((m): [string, number] => [m[1], Number(m[2] ?? '0')])
    .sort((a, b) => b[1] - a[1]);
  // scripts/run-tests.ts ends with one line per phase: `<phase>: passed in <seconds> s` (the phases run together).
  const phases = [...output.matchAll(/^(lint \(eslint\)|typecheck \(tsc\)|jest): (?:passed|FAILED[^\n]*) in ([\d.]+) s$/gm)]
    .map((m): [string, number] => [m[1], Number(m[2])]);
  const guard = fs.existsSync(guardLog)
    ? fs.readFileSync(guardLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { templates: number; ms: number })
    : [];
  if (r.status !== 0) {
    console.error(output.slice(-4000));
  }
  return {
    label,
    ok: r.status === 0,
    wallSeconds,
    cpuSeconds,
    maxRssMb,
    phases,
    suites,
    guardRuns: guard.length,
    guardSeconds: guard.reduce((n, g) => n + g.ms, 0) / 1000,
    guardTemplates: guard.reduce((n, g) => n + g.templates, 0),
  };
}

function report(run: Run): void {
  const budget = run.wallSeconds <= BUDGET_SECONDS ? 'under' : 'OVER';
  console.log(`\n## ${run.label}: ${run.ok ? 'passed' : 'FAILED'}`);
  console.log(`wall ${run.wallSeconds.toFixed(1)} s (${budget} the ${BUDGET_SECONDS} s budget)`);
  if (run.cpuSeconds !== undefined) {
    console.log(`cpu  ${run.cpuSeconds.toFixed(1)} s (user + system of npm test and its children), peak RSS of one process ${run.maxRssMb!.toFixed(0)} MB`);
  }
  for (const [phase, seconds] of run.phases) {
    console.log(`${phase}: ${seconds.toFixed(1)} s`);
  }
  console.log(`cfn-guard: ${run.guardRuns} runs over ${run.guardTemplates} templates, ${run.guardSeconds.toFixed(1)} s in all (wall, inside the suites)`);
  const total = run.suites.reduce((n, [, s]) => n + s, 0);
  console.log(`suites: ${run.suites.length}, ${total.toFixed(1)} s summed over the workers; the slowest:`);
  for (const [suite, seconds] of run.suites.slice(0, 12)) {
    console.log(`  ${seconds.toFixed(1).padStart(6)} s  ${suite}`);
  }
}

function main(argv: readonly string[]): void {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`# npm test: ${os.cpus().length} cores, load average ${load} (1, 5, 15 min), node ${process.version}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-bench-tests-'));
  const runs: Run[] = [];
  const baselineAt = argv.indexOf('--baseline');
  if (baselineAt >= 0) {
    const rev = argv[baselineAt + 1];
    if (!rev) {
      throw new Error('--baseline needs a commit');
    }
    const tree = path.join(work, 'baseline');
    const add = spawnSync('git', ['worktree', 'add', '--detach', tree, rev], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (add.status !== 0) {
      throw new Error(`git worktree add ${rev}: ${add.stderr}`);
    }
    try {
      fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(tree, 'node_modules'));
      // The CRDs and schemas the tests read from ../shared.
      fs.symlinkSync(path.resolve(REPO_ROOT, '..', 'shared'), path.join(work, 'shared'));
      runs.push(runTests(`baseline ${rev}, cold caches`, tree, path.join(work, 'cache-baseline')));
    } finally {
      spawnSync('git', ['worktree', 'remove', '--force', tree], { cwd: REPO_ROOT });
    }
  }
  const cache = path.join(work, 'cache');
  runs.push(runTests('this checkout, cold caches', REPO_ROOT, cache));
  if (argv.includes('--warm')) {
    runs.push(runTests('this checkout, warm caches (the first run\'s)', REPO_ROOT, cache));
  }
  runs.forEach(report);
  fs.rmSync(work, { recursive: true, force: true });
  if (runs.some((r) => !r.ok)) {
    process.exitCode = 1;
  }
}

main(process.argv.slice(2));
