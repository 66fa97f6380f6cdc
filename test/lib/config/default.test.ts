import * as path from 'path';
import { DEFAULT_CONFIG, loadConfigFile, validateConfig } from '../../../lib/config';

const EXAMPLES = path.join(__dirname, '..', '..', '..', 'examples', 'config');

describe('DEFAULT_CONFIG', () => {
  test('is a valid config', () => {
    expect(validateConfig(DEFAULT_CONFIG, '(embedded default)')).toBe(DEFAULT_CONFIG);
  });

  test('is what examples/config/default.yaml says', () => {
    expect(loadConfigFile(path.join(EXAMPLES, 'default.yaml'))).toStrictEqual(DEFAULT_CONFIG);
  });

  test('fixes the region only (so the Gloo routes in dist/ can name it), with the zones listed so synth needs no lookup', () => {
    expect(DEFAULT_CONFIG.env).toEqual({ region: 'us-east-1' });
    expect(DEFAULT_CONFIG.network?.availabilityZones).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
  });

  test('lets every model read features, write results and send logs, and nothing else', () => {
    const rules = DEFAULT_CONFIG.rules.map((r) => `${r.from} -> ${r.to} ${r.http ? `${r.http.methods?.join(',')} ${r.http.pathPrefix}` : 'L4'}`);
    expect(rules).toEqual(
      ['model-a', 'model-b', 'model-c'].flatMap((fn) => [
        `${fn} -> feature-store GET /features`,
        `${fn} -> result-writer POST /results`,
        `${fn} -> log-service L4`,
      ]),
    );
    expect(DEFAULT_CONFIG.rules.every((r) => r.description !== undefined && r.action === undefined)).toBe(true);
  });
});
