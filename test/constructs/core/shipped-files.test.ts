import { existsSync } from 'fs';
import { join } from 'path';
import { fillPlaceholders, shippedFile } from '../../../constructs/core/private/shipped-files';

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

describe('fillPlaceholders', () => {
  test('fills @@NAME@@ where it stands, and replaces a line holding only # @@NAME@@ whole', () => {
    const template = 'A=@@A@@\ncase "$1" in\n    # @@CASES@@\n  *) echo "@@A@@ and @@B@@" ;;\nesac\n';
    const filled = fillPlaceholders(template, { A: '/etc/a', B: "'b c'", CASES: '    x) :;;\n    y) :;;' }, 't');
    expect(filled).toBe('A=/etc/a\ncase "$1" in\n    x) :;;\n    y) :;;\n  *) echo "/etc/a and \'b c\'" ;;\nesac\n');
  });

  test('takes values as they are: no $-patterns, no placeholders scanned inside a value', () => {
    expect(fillPlaceholders('x @@A@@ y', { A: "$& $1 $' @@B@@" }, 't')).toBe("x $& $1 $' @@B@@ y");
  });

  test('a # @@NAME@@ that shares its line with anything else is filled in place', () => {
    expect(fillPlaceholders('echo x # @@A@@\n', { A: 'a' }, 't')).toBe('echo x # a\n');
  });

  test('fails when a placeholder has no value, or a value no placeholder', () => {
    expect(() => fillPlaceholders('@@A@@ @@B@@', { A: 'a' }, 'the template')).toThrow(
      'lambda-mesh: the template has the placeholder @@B@@, which is given no value');
    expect(() => fillPlaceholders('@@A@@', { A: 'a', B: 'b', C: 'c' }, 'the template')).toThrow(
      'lambda-mesh: the template has no placeholder for @@B@@, @@C@@');
  });
});
