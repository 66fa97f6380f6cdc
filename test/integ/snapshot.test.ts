import * as path from 'path';
import { GUARD_CACHE_DIR, normalizeAssetHashes } from '../harness';
import { INTEG_TEST_FILE, readSnapshot, REGENERATE_COMMAND, SNAPSHOT_DIR, synthesizeSnapshot } from '../../scripts/integ-snapshot';

const root = path.resolve(__dirname, '..', '..');
const relative = (file: string): string => path.relative(root, file);

// A full synth of the environment in a child process, as integ-runner runs the test: slow on a busy machine.
jest.setTimeout(600_000);

describe('integration test snapshot', () => {
  test(`${relative(SNAPSHOT_DIR)} is what ${relative(INTEG_TEST_FILE)} synthesizes (asset hashes ignored)`, () => {
    // The suite's cfn-guard findings per template, shared with the child process (the same for the same bytes).
    if (GUARD_CACHE_DIR !== undefined) {
      process.env.LAMBDA_MESH_GUARD_CACHE_DIR = GUARD_CACHE_DIR;
    }
    const synthesized = synthesizeSnapshot();
    const committed = readSnapshot();
    // "- Expected" is the committed snapshot, "+ Received" what the app synthesizes now.
    const check = (what: string, assertion: () => void): void => {
      try {
        assertion();
      } catch (e) {
        if (e instanceof Error) {
          e.message = `The committed snapshot of ${relative(INTEG_TEST_FILE)} is out of date (${what}): run \`${REGENERATE_COMMAND}\` and commit ${relative(SNAPSHOT_DIR)}/.\n\n${e.message}`;
        }
        throw e;
      }
    };
    check('its files', () => expect([...synthesized.keys()]).toEqual([...committed.keys()]));
    for (const [file, content] of synthesized) {
      // Asset hashes, and the asset manifests whose destination ids derive from them, change with every handler or
      // image change; what the snapshot guards is the templates, the manifest and integ.json.
      if (!file.endsWith('.assets.json')) {
        check(file, () => expect(normalizeAssetHashes(content)).toEqual(normalizeAssetHashes(committed.get(file))));
      }
    }
  });
});
