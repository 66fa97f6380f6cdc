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

/** `@@NAME@@`, or a line that holds nothing but `# @@NAME@@` (indented or not). */
const PLACEHOLDER = /^[ \t]*# @@([A-Z][A-Z0-9_]*)@@$|@@([A-Z][A-Z0-9_]*)@@/gm;

/**
 * Fills the placeholders of a shipped script with the values TypeScript owns, in one pass (a value is never
 * scanned for placeholders itself):
 *
 * - `@@NAME@@` is replaced by `values.NAME`, where it stands;
 * - a line that holds only `# @@NAME@@` is replaced whole, indentation included, by `values.NAME`: for values of
 *   several lines that carry their own indentation and are no shell word (case branches, heredocs), while the
 *   template stays a valid script that shellcheck can read.
 *
 * Every placeholder must have a value and every value a placeholder, so the two cannot drift apart silently.
 *
 * @param what names the template in errors
 */
export function fillPlaceholders(template: string, values: Readonly<Record<string, string>>, what: string): string {
  const used = new Set<string>();
  const filled = template.replace(PLACEHOLDER, (_match, onItsLine?: string, inline?: string) => {
    const name = (onItsLine ?? inline)!;
    if (!Object.prototype.hasOwnProperty.call(values, name)) {
      throw new Error(`lambda-mesh: ${what} has the placeholder @@${name}@@, which is given no value`);
    }
    used.add(name);
    return values[name];
  });
  const unused = Object.keys(values).filter((name) => !used.has(name));
  if (unused.length > 0) {
    throw new Error(`lambda-mesh: ${what} has no placeholder for ${unused.map((n) => `@@${n}@@`).join(', ')}`);
  }
  return filled;
}
