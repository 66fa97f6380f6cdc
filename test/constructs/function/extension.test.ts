/**
 * The mesh extension is a Go program (constructs/function/extension, standard library only). Its own tests run
 * with `go test`: a fake Lambda Extensions API, a local SSM stand-in (SigV4 checked against AWS's test vectors),
 * and a TLS mesh gateway stand-in with SPIFFE certificates generated in the test. Here they run as part of
 * `npm test`, with `go vet` and the static build the container image will use. The built binary is tested as a
 * black box in extension-runtime.test.ts.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import { buildExtension, EXTENSION_DIR as dir } from './extension-fixture';

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

  test('its own tests pass (Extensions API order, init errors, SigV4, mTLS with SPIFFE checks, refresh, shutdown)', () => {
    expect(go(['test', '-count=1', './...'])).toMatch(/^ok\s+lambdamesh\/extension/m);
  }, 120_000);

  test('builds as a static binary under 10 MB with the standard library only', () => {
    const out = buildExtension();
    const size = fs.statSync(out).size;
    expect(size).toBeLessThan(10 * 1024 * 1024);
    // No module dependency: only the standard library.
    expect(go(['list', '-deps', '-f', '{{if not .Standard}}{{.ImportPath}}{{end}}', '.']).trim()).toBe('lambdamesh/extension');
    // Static: the ELF has no interpreter (PT_INTERP) to load.
    const elf = fs.readFileSync(out);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.includes(Buffer.from('/lib64/ld-linux'))).toBe(false);
  }, 120_000);
});
