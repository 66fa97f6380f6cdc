import * as fs from 'fs';
import * as path from 'path';

/** The extension's main package, relative to its module: what `go build` compiles into the binary. */
export const EXTENSION_MAIN_PACKAGE = './cmd/lambda-mesh-extension';

/**
 * Packages of the extension's module that only its tests import: not part of the binary, so they are neither
 * staged nor hashed (a change to a test helper must not rebuild every function's image).
 */
const TEST_ONLY_PACKAGES = ['internal/meshtest/'];

/**
 * Whether a file of the extension's module (its path relative to the module, with `/`) is read by the build of
 * the binary: go.mod and go.sum, the Go sources without `*_test.go`, and the data files the Go code embeds
 * (`//go:embed`, e.g. `internal/config/env.json`). Test data and test-only packages are left out.
 * test/constructs/function/extension.test.ts checks this against what `go list -deps` says the build reads.
 */
export function isExtensionBuildInput(rel: string): boolean {
  const parts = rel.split('/');
  const name = parts[parts.length - 1];
  if (parts.includes('testdata') || TEST_ONLY_PACKAGES.some((p) => rel.startsWith(p))) {
    return false;
  }
  return name === 'go.mod' || name === 'go.sum' || (name.endsWith('.go') && !name.endsWith('_test.go'))
    || name.endsWith('.json');
}

/**
 * The files of the extension's module at `dir` that its build reads ({@link isExtensionBuildInput}): paths
 * relative to `dir`, with `/`, sorted. Symbolic links are followed.
 */
export function extensionSourceFiles(dir: string): string[] {
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel)).sort()) {
      const relPath = rel === '' ? entry : `${rel}/${entry}`;
      const stat = fs.statSync(path.join(dir, relPath));
      if (stat.isDirectory()) {
        walk(relPath);
      } else if (stat.isFile() && isExtensionBuildInput(relPath)) {
        files.push(relPath);
      }
    }
  };
  walk('');
  return files.sort();
}

/** The extension's Go module: beside this module in the repository, or in the package's `constructs/` tree. */
export function extensionSourceDir(): string {
  const candidates = [
    path.resolve(__dirname, '..', 'extension'),
    path.resolve(__dirname, '..', '..', '..', '..', 'constructs', 'function', 'extension'),
  ];
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'go.mod')));
  if (!found) {
    const looked = candidates.join(', ');
    throw new Error(`lambda-mesh: the extension sources are missing (looked in ${looked}); the package is incomplete`);
  }
  return found;
}
