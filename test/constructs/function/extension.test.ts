/**
 * The mesh extension is a Go module (constructs/function/extension: cmd/lambda-mesh-extension and internal/...,
 * standard library only). Its own tests run with `go test`: a fake Lambda Extensions API, a local SSM stand-in
 * (SigV4 checked against AWS's test vectors), and a TLS mesh gateway stand-in with SPIFFE certificates generated
 * in the test. Here they run as part of `npm test`, with `go vet`, `gofmt` and the static build the container
 * image will use. The built binary is tested as a black box in extension-runtime.test.ts.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { EXTENSION_MAIN_PACKAGE, extensionSourceFiles } from '../../../constructs/function/private/extension-sources';
import { buildExtension, EXTENSION_DIR as dir } from './extension-fixture';

/** The extension's module path (go.mod). */
const MODULE = 'github.com/lambda-mesh/lambda-mesh/extension';
/** The packages of the module that have tests. */
const TESTED = ['bundle', 'config', 'lifecycle', 'proxy', 'sigv4', 'ssm'].map((p) => `${MODULE}/internal/${p}`);

function go(args: string[]): string {
  return execFileSync('go', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('mesh extension (Go)', () => {
  beforeAll(() => {
    if (spawnSync('sh', ['-c', 'command -v go']).status !== 0) {
      throw new Error('Go is not installed: apt-get install -y golang-go (npm test does this when it can)');
    }
  });

  test('go vet finds nothing', () => {
    expect(go(['vet', './...'])).toBe('');
  });

  test('gofmt has nothing to change', () => {
    const gofmt = path.join(go(['env', 'GOROOT']).trim(), 'bin', 'gofmt');
    expect(execFileSync(gofmt, ['-l', '.'], { cwd: dir, encoding: 'utf8' })).toBe('');
  });

  test('its own tests pass (Extensions API order, init errors, SigV4, mTLS with SPIFFE checks, refresh, shutdown)', () => {
    const out = go(['test', '-count=1', './...']);
    // One "ok" line per package with tests, and no other result.
    const results = out.split('\n').filter((l) => /^(ok|FAIL|---)\s/.test(l));
    expect(results.map((l) => l.split(/\s+/)[1]).sort()).toEqual(TESTED);
    expect(results.every((l) => l.startsWith('ok'))).toBe(true);
  }, 120_000);

  test('builds as a static binary under 10 MB with the standard library only', () => {
    const out = buildExtension();
    const size = fs.statSync(out).size;
    expect(size).toBeLessThan(10 * 1024 * 1024);
    // No module dependency: only the standard library and the module's own packages, so no go.sum.
    const deps = go(['list', '-deps', '-f', '{{if not .Standard}}{{.ImportPath}}{{end}}', EXTENSION_MAIN_PACKAGE]);
    expect(deps.trim().split('\n').filter((p) => !p.startsWith(`${MODULE}/`))).toEqual([]);
    expect(deps).toContain(`${MODULE}/cmd/lambda-mesh-extension`);
    expect(fs.existsSync(path.join(dir, 'go.sum'))).toBe(false);
    // Static: the ELF has no interpreter (PT_INTERP) to load.
    const elf = fs.readFileSync(out);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.includes(Buffer.from('/lib64/ld-linux'))).toBe(false);
  }, 120_000);

  test('the construct stages and hashes exactly the files the build reads (go list): no tests, no test helpers', () => {
    const format = '{{if not .Standard}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}';
    const read = go(['list', '-deps', '-f', format, EXTENSION_MAIN_PACKAGE]).trim().split('\n').flatMap((line) => {
      const [pkgDir, goFiles, embedFiles] = line.split('|');
      const rel = path.relative(dir, pkgDir).split(path.sep).join('/');
      const files = [...goFiles.split(','), ...embedFiles.split(',')].filter((f) => f !== '');
      return files.map((f) => (rel === '' ? f : `${rel}/${f}`));
    });
    expect(extensionSourceFiles(dir)).toEqual(['go.mod', ...read].sort());
    expect(read).toContain('internal/config/env.json');
  });
});
