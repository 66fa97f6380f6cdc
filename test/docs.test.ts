import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

/** The files people read: the READMEs, docs/, and the sources whose comments explain the code. */
function readableFiles(dir: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!['node_modules', 'imports', '__snapshots__', 'cdk.out', 'build', 'dist'].includes(entry.name) && !entry.name.startsWith('.') && !entry.name.endsWith('.snapshot')) {
        readableFiles(rel, out);
      }
    } else if (/\.(md|ts|go|sh|py)$/.test(entry.name)) {
      out.push(rel);
    }
  }
  return out;
}

/** Mentions of the project's issue tracker by number, such as "issue" and a number, or "[built #" and one. */
const ISSUE_NUMBER = /\bissues? #?\d+\b|\[built #\d+\]/i;

describe('documentation', () => {
  const files = ['README.md', ...['docs', 'constructs', 'lib', 'bin', 'scripts', 'bench', 'examples', 'test'].flatMap((d) => readableFiles(d))];

  test('the scan finds the READMEs and docs it checks', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', path.join('docs', 'architecture.md'), path.join('constructs', 'mesh', 'README.md')]));
  });

  test('no file speaks of issue numbers: docs say what the code does, not which ticket asked for it', () => {
    const hits = files.flatMap((file) =>
      fs.readFileSync(path.join(root, file), 'utf8').split('\n').flatMap((line, i) => (ISSUE_NUMBER.test(line) && file !== path.join('test', 'docs.test.ts') ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(hits).toEqual([]);
  });

  test('fails when a line names an issue (the pattern is not vacuous)', () => {
    expect(['built (issue 11)', 'see issue #4', '[built #7]'].filter((l) => ISSUE_NUMBER.test(l))).toHaveLength(3);
    expect(['HTTP 404', 'tissue 3', 'the issuer'].filter((l) => ISSUE_NUMBER.test(l))).toEqual([]);
  });
});
