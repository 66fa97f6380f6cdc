import { existsSync } from 'fs';
import { join } from 'path';
import { shippedFile } from '../../../constructs/core/private/shipped-files';

describe('shippedFile', () => {
  test('finds a shipped file beside its module in the sources', () => {
    const found = shippedFile('services/scripts/ec2-sidecar.sh', 'the EC2 sidecar script');
    expect(found).toBe(join(__dirname, '..', '..', '..', 'constructs', 'services', 'scripts', 'ec2-sidecar.sh'));
    expect(existsSync(found)).toBe(true);
  });

  test('fails when the file is missing, naming it and where it looked', () => {
    expect(() => shippedFile('services/scripts/nothing.sh', 'the nothing script')).toThrow(
      /^lambda-mesh: the nothing script is missing \(looked in \S+constructs\/services\/scripts\/nothing\.sh, \S+\)$/);
  });
});
