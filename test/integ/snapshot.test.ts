import * as path from 'path';
import { normalizeAssetHashes } from '../harness';
import { INTEG_TEST_FILE, readSnapshot, REGENERATE_COMMAND, SNAPSHOT_DIR, synthesizeSnapshot } from '../../scripts/integ-snapshot';

const root = path.resolve(__dirname, '..', '..');

// A full synth of the environment in a child process, as integ-runner runs the test: slow on a busy machine.
jest.setTimeout(600_000);

describe('integration test snapshot', () => {
  test(`${path.relative(root, SNAPSHOT_DIR)} is what ${path.relative(root, INTEG_TEST_FILE)} synthesizes (asset hashes ignored)`, () => {
    const actual = synthesizeSnapshot();
    const committed = readSnapshot();
    const hint = `The committed snapshot of ${path.relative(root, INTEG_TEST_FILE)} is out of date: run \`${REGENERATE_COMMAND}\` and commit ${path.relative(root, SNAPSHOT_DIR)}/.`;
    try {
      expect([...committed.keys()]).toEqual([...actual.keys()]);
      for (const [file, content] of actual) {
        // Asset hashes change with every handler or image change; the diff that matters is in the templates.
        expect({ file, content: normalizeAssetHashes(committed.get(file)) }).toEqual({ file, content: normalizeAssetHashes(content) });
      }
    } catch (e) {
      if (e instanceof Error) {
        e.message = `${hint}\n\n${e.message}`;
      }
      throw e;
    }
  });
});
