/**
 * The example model handler is Python (lib/model-handler, NumPy plus the standard library). Its own tests run with
 * `python3 -m unittest` against local HTTP stand-ins for the feature store and the result writer; here they run
 * as part of `npm test`.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const dir = path.resolve(__dirname, '..', '..', 'lib', 'model-handler');

// No __pycache__ in the source tree.
const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };

describe('example model handler (Python)', () => {
  beforeAll(() => {
    const python = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8', env });
    if (python.error !== undefined) {
      throw new Error('python3 is not installed: apt-get install -y python3 python3-numpy (npm test does this when it can)');
    }
    if (python.status !== 0) {
      throw new Error(`python3 cannot import numpy: apt-get install -y python3-numpy (npm test does this when it can)\n${python.stderr}`);
    }
  });

  test('its own tests pass (score, 400, 404, upstream 500/invalid JSON/down -> 502, timeout -> 504, result writer)', () => {
    const run = spawnSync('python3', ['-m', 'unittest', 'discover', '-s', dir, '-v'], { encoding: 'utf8', env, timeout: 60_000 });
    // unittest reports on stderr.
    expect(run.stderr).toMatch(/^OK$/m);
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/^Ran (\d{2,}) tests/m);
  }, 90_000);
});
