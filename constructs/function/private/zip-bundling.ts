import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { type Construct } from 'constructs';
import { throwInvalid } from '../../core/errors';
import { contentHash } from '../../core/internal';
import { EXTENSION_MAIN_PACKAGE, extensionSourceFiles } from './extension-sources';

/**
 * The Go build of the extension, for the layer: a static binary at `<out>/extensions/lambda-mesh`, which Lambda
 * starts from `/opt/extensions/`. GOPROXY=off: standard library only, nothing may be fetched; GOTOOLCHAIN=local:
 * Go 1.21+ would otherwise download the toolchain go.mod names; -buildvcs=false: the output must not depend on the
 * checkout it was built from.
 */
export function goBuildEnvironment(goarch: string): Record<string, string> {
  return { CGO_ENABLED: '0', GOOS: 'linux', GOARCH: goarch, GOPROXY: 'off', GOTOOLCHAIN: 'local', GOFLAGS: '-buildvcs=false' };
}
export const GO_BUILD_ARGS = ['build', '-trimpath', '-ldflags=-s -w', '-o'];
export const LAYER_BINARY = path.join('extensions', 'lambda-mesh');

/** The SHA-256 of what the extension's build reads (its module without tests, by relative path) and `salt`, hashed
 * as staged files are. */
export function extensionSourceHash(extensionDir: string, salt: string): string {
  const sources = new Map<string, Buffer>();
  for (const rel of extensionSourceFiles(extensionDir)) {
    sources.set(rel, fs.readFileSync(path.join(extensionDir, rel)));
  }
  return contentHash(salt, sources);
}

/** True when a `go` command runs here. */
export function hasLocalGo(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Builds the extension with the local Go into `<outputDir>/extensions/lambda-mesh`; throws with Go's output on
 * failure.
 */
export function buildExtensionLocally(extensionDir: string, outputDir: string, goarch: string): void {
  const out = path.join(outputDir, LAYER_BINARY);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const env = { ...process.env, ...goBuildEnvironment(goarch) };
  const args = [...GO_BUILD_ARGS, out, EXTENSION_MAIN_PACKAGE];
  const r = spawnSync('go', args, { cwd: extensionDir, encoding: 'utf8', env });
  if (r.status !== 0) {
    throw new Error(`go build of the mesh extension failed (GOARCH=${goarch}):\n${r.stderr}`);
  }
}

/** The shell command that builds the extension in the Go builder container (its module at /asset-input). */
export function containerBuildCommand(goarch: string): string[] {
  const env = Object.entries({ ...goBuildEnvironment(goarch), GOCACHE: '/tmp/go-cache' })
    .map(([k, v]) => `${k}=${v}`).join(' ');
  const build = `go build -trimpath -ldflags='-s -w' -o /asset-output/${LAYER_BINARY} ${EXTENSION_MAIN_PACKAGE}`;
  return ['sh', '-c', `${env} ${build}`];
}

/** What the zip packaging leaves out of a Python function's code (the image build skips the same). */
export const PYTHON_EXCLUDES = ['__pycache__', '*.pyc', '*.pyo', '.pytest_cache', '.mypy_cache', '.ruff_cache', '.venv', 'venv', '.git', 'tests', 'test_*.py', '*_test.py', 'conftest.py', '.env', '.env.*', '.aws', '.ssh', '.netrc', '.pypirc', '.npmrc', '.docker', '.git-credentials'];

/**
 * The Python program that bundles a function in the Lambda Python base image (which has Python and pip, but
 * neither rsync nor, surely, bash): it copies the code without {@link PYTHON_EXCLUDES} and installs the
 * requirements into the output, hash-checked (PIP_REQUIRE_HASHES), as wheels for the function's architecture:
 * `--platform` makes pip choose them whatever the bundling container runs on (Lambda's Python 3.12+ runtimes are
 * Amazon Linux 2023, glibc 2.34; pip also accepts older manylinux tags).
 *
 * @param goarch `amd64` or `arm64`
 */
export function pythonBundlingScript(goarch: string, input = '/asset-input', output = '/asset-output'): string {
  const platform = `manylinux_2_34_${goarch === 'amd64' ? 'x86_64' : 'aarch64'}`;
  const pip = [
    'sys.executable', "'-m'", "'pip'", "'install'", "'--only-binary=:all:'", `'--platform'`, `'${platform}'`,
    "'--no-cache-dir'", "'--disable-pip-version-check'", "'--no-input'", "'--target'", 'dst', "'-r'", 'req',
  ].join(', ');
  return [
    'import os, shutil, subprocess, sys',
    `src, dst = ${JSON.stringify(input)}, ${JSON.stringify(output)}`,
    `shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*${JSON.stringify(PYTHON_EXCLUDES)}))`,
    "req = os.path.join(src, 'requirements.txt')",
    `if os.path.exists(req): subprocess.run([${pip}], check=True)`,
  ].join('\n');
}

/** The unzipped size of a directory or file, in bytes (symbolic links followed). */
export function measure(p: string): number {
  const stat = fs.statSync(p);
  if (!stat.isDirectory()) {
    return stat.size;
  }
  return fs.readdirSync(p).reduce((n, entry) => n + measure(path.join(p, entry)), 0);
}

/** Lambda's limit on a function's unzipped code plus all its layers. */
export const UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

/** Fails when the parts together exceed Lambda's unzipped limit; returns the total. */
export function checkSizeBudget(scope: Construct, parts: ReadonlyArray<readonly [string, string]>): number {
  const sizes = parts.map(([name, dir]) => [name, measure(dir)] as const);
  const total = sizes.reduce((n, [, s]) => n + s, 0);
  if (total > UNZIPPED_LIMIT_BYTES) {
    throwInvalid(scope, 'code', `${mib(total)} unzipped (${sizes.map(([n, s]) => `${n} ${mib(s)}`).join(', ')})`, `at most ${mib(UNZIPPED_LIMIT_BYTES)} unzipped with all layers, Lambda's limit for zip packages: trim the requirements, or use MeshFunction (container images may be 10 GB)`);
  }
  return total;
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
