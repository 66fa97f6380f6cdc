import * as fs from 'fs';
import * as path from 'path';

/**
 * Where a file the library ships as it is (a machine script, say) lies, by its path under `constructs/`
 * (e.g. `consul/scripts/server-library.sh`): beside its module when run from this repository's sources, or in
 * the published package, whose compiled modules are under `build/` while the shipped files keep their place
 * under `constructs/` (package.json `files`).
 *
 * @param what names the file in the error when it is missing
 */
export function shippedFile(relativePath: string, what: string): string {
  const parts = relativePath.split('/');
  const candidates = [
    // constructs/core/private -> constructs/
    path.resolve(__dirname, '..', '..', ...parts),
    // build/constructs/core/private -> the package root's constructs/
    path.resolve(__dirname, '..', '..', '..', '..', 'constructs', ...parts),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (found === undefined) {
    throw new Error(`lambda-mesh: ${what} is missing (looked in ${candidates.join(', ')})`);
  }
  return found;
}
