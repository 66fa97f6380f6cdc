import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compare } from '../names';

/**
 * Writes `files` (relative paths with `/` -> content) into `<tmpdir>/<kind>/<hash>`, where `<hash>` is the SHA-256
 * of everything in it and of `version`: the same inputs give the same directory (and so the same asset hash),
 * and a directory is written once, to a temporary name, then renamed, so concurrent synths never see half of it.
 * Staged outside the cloud assembly because an asset must exist when its construct is created; CDK then stages
 * its own copy into the assembly. Files get mode 0644 whatever the author's umask was.
 *
 * @param kind the directory under the temporary directory, e.g. `lambda-mesh-image-context`
 * @param version bumped when the layout of what is staged changes, so an old directory is never reused
 */
export function stageFiles(kind: string, version: string, files: ReadonlyMap<string, Buffer>): string {
  const directory = path.join(os.tmpdir(), kind, contentHash(`${kind}/${version}`, files).slice(0, 32));
  if (!fs.existsSync(directory)) {
    const staging = `${directory}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    for (const [name, content] of files) {
      const file = path.join(staging, ...name.split('/'));
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      fs.writeFileSync(file, content, { mode: 0o644 });
    }
    try {
      fs.renameSync(staging, directory);
    } catch (e) {
      // Another synth wrote the same content first: keep theirs.
      fs.rmSync(staging, { recursive: true, force: true });
      if (!fs.existsSync(directory)) {
        throw e;
      }
    }
  }
  return directory;
}

/**
 * The SHA-256 (hex) of `files` and `salt`: the salt and a NUL, then, in {@link compare} order of their names, each
 * file as `<name>\0<length>\0<content>`. The one content hash of what the library stages: {@link stageFiles}
 * names its directories by it, and the extension layer's asset hash is it of the extension's sources.
 */
export function contentHash(salt: string, files: ReadonlyMap<string, Buffer>): string {
  const hash = createHash('sha256').update(`${salt}\0`);
  for (const name of [...files.keys()].sort(compare)) {
    const content = files.get(name)!;
    hash.update(`${name}\0${content.length}\0`).update(content);
  }
  return hash.digest('hex');
}
