import * as fs from 'fs';
import * as path from 'path';
import { normalizeAssetHashes } from './snapshot-serializer';

/** Jest's snapshot state, as far as this helper reads it (`-u` sets `_updateSnapshot` to `all`, `--ci` to `none`). */
interface SnapshotState {
  readonly _updateSnapshot?: 'all' | 'new' | 'none';
}

/**
 * Asserts that `value` (asset hashes normalised, see snapshot-serializer.ts) equals the JSON in `file`, one file
 * per snapshot, so a change to one stack shows as a diff of that stack's file, not of one file for everything.
 *
 * Like `toMatchSnapshot`: `jest -u` rewrites the file, a missing file is written unless Jest runs with `--ci`,
 * and a mismatch fails with Jest's diff ("- Expected" the file, "+ Received" what was synthesized).
 */
export function expectMatchesFileSnapshot(file: string, value: unknown): void {
  const received = normalizeAssetHashes(value);
  const text = `${JSON.stringify(received, undefined, 2)}\n`;
  const mode = (expect.getState().snapshotState as SnapshotState | undefined)?._updateSnapshot ?? 'new';
  const exists = fs.existsSync(file);
  if (mode === 'all' || (!exists && mode === 'new')) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return;
  }
  if (!exists) {
    throw new Error(`${file}: no snapshot (Jest runs with --ci, so none is written): run jest -u and commit it`);
  }
  try {
    expect(received).toEqual(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    if (e instanceof Error) {
      e.message = `${path.basename(file)} is out of date: if the change is intended, run jest -u and commit it.\n\n${e.message}`;
    }
    throw e;
  }
}
