import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type LambdaMeshError, StagedDirectory } from '../../../constructs/core';
import { contentHash } from '../../../constructs/core/internal';
import { meshError } from '../../util';

describe('StagedDirectory', () => {
  const kind = `lambda-mesh-test-${process.pid}`;
  afterAll(() => fs.rmSync(path.join(os.tmpdir(), kind), { recursive: true, force: true }));

  test('writes the files into <tmpdir>/<kind>/<content hash>, with mode 0644', () => {
    const files = { 'Dockerfile': 'FROM scratch\n', 'bin/app.sh': '#!/bin/sh\n' };
    const dir = StagedDirectory.fromFiles(kind, '1', files);
    const expected = contentHash(`${kind}/1`, new Map(Object.entries(files).map(([n, c]) => [n, Buffer.from(c)])));
    expect(dir).toBe(path.join(os.tmpdir(), kind, expected.slice(0, 32)));
    expect(fs.readFileSync(path.join(dir, 'bin', 'app.sh'), 'utf8')).toBe('#!/bin/sh\n');
    expect(fs.statSync(path.join(dir, 'Dockerfile')).mode & 0o777).toBe(0o644);
  });

  test('the same files give the same directory; another content, name or version another one', () => {
    const dir = StagedDirectory.fromFiles(kind, '1', { a: 'x', b: 'y' });
    expect(StagedDirectory.fromFiles(kind, '1', { b: 'y', a: 'x' })).toBe(dir);
    expect(StagedDirectory.fromFiles(kind, '1', { a: 'x', b: 'z' })).not.toBe(dir);
    expect(StagedDirectory.fromFiles(kind, '1', { a: 'x', c: 'y' })).not.toBe(dir);
    expect(StagedDirectory.fromFiles(kind, '2', { a: 'x', b: 'y' })).not.toBe(dir);
  });

  test.each([
    ['kind', () => StagedDirectory.fromFiles('../escape', '1', { a: 'x' })],
    ['kind', () => StagedDirectory.fromFiles('a/b', '1', { a: 'x' })],
    ['files["../a"]', () => StagedDirectory.fromFiles(kind, '1', { '../a': 'x' })],
    ['files["/a"]', () => StagedDirectory.fromFiles(kind, '1', { '/a': 'x' })],
    ['files["a/./b"]', () => StagedDirectory.fromFiles(kind, '1', { 'a/./b': 'x' })],
    ['files', () => StagedDirectory.fromFiles(kind, '1', {})],
  ])('fails when %s is not acceptable', (field, stage) => {
    const err: LambdaMeshError = meshError(stage);
    expect(err.location).toBe('StagedDirectory.fromFiles');
    expect(err.field).toBe(field);
  });
});

describe('contentHash', () => {
  test('hashes the salt, then each file as <name>\\0<length>\\0<content>, names in code-unit order', () => {
    const files = new Map([['b', Buffer.from('22')], ['B', Buffer.from('1')]]);
    const expected = createHash('sha256').update('s\0').update('B\x001\x001').update('b\x002\x0022').digest('hex');
    expect(contentHash('s', files)).toBe(expected);
  });
});
