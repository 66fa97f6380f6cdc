import * as fs from 'fs';
import * as path from 'path';
import { Token } from 'aws-cdk-lib';
import { type Construct } from 'constructs';
import { throwInvalid } from '../../core/errors';
import { type MeshFunctionBaseImage } from '../base-image';
import { checkRequirements } from './requirements';
import { warn } from './wiring';

const HANDLER = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/;

/** The code directory, resolved; it must exist and be a directory. */
export function checkCodeDirectory(scope: Construct, code: string): string {
  if (typeof code !== 'string' || Token.isUnresolved(code) || code === '') {
    throwInvalid(scope, 'code', code, 'the path of the directory with the handler\'s code');
  }
  const dir = path.resolve(code);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throwInvalid(scope, 'code', code, `an existing directory (${dir} is ${fs.existsSync(dir) ? 'not a directory' : 'missing'})`);
  }
  return dir;
}

/** The handler must be `<module>.<function>` and its module must exist in the code directory. */
export function checkHandler(scope: Construct, codeDir: string, handler: string, extension: string): void {
  if (typeof handler !== 'string' || !HANDLER.test(handler)) {
    throwInvalid(scope, 'handler', handler, 'a handler "<module>.<function>" such as "app.handler" (Python identifiers separated by ".")');
  }
  const modulePath = handler.split('.').slice(0, -1).join('/');
  const candidates = [`${modulePath}${extension}`, `${modulePath}/__init__${extension}`];
  if (!candidates.some((c) => fs.existsSync(path.join(codeDir, c)))) {
    throwInvalid(scope, 'handler', handler, `a handler whose module is in the code directory (${candidates.join(' or ')} under ${codeDir})`);
  }
}

/** Checks requirements.txt, if any; returns whether there is one. */
export function checkRequirementsFile(scope: Construct, codeDir: string, requireHashes: boolean): boolean {
  const file = path.join(codeDir, 'requirements.txt');
  if (!fs.existsSync(file)) {
    return false;
  }
  const { problems } = checkRequirements(fs.readFileSync(file, 'utf8'));
  if (!requireHashes) {
    warn(scope, 'requireHashesOff', `requireHashes is off: pip installs ${file} without hash checking, so a changed or substituted package is not detected. Pin and hash every requirement (pip-compile --generate-hashes) and turn it back on.`);
    return true;
  }
  if (problems.length > 0) {
    const list = problems.map((p) => `line ${p.line} (${p.text}): ${p.problem}`).join('; ');
    throwInvalid(scope, 'code', `${file} with ${problems.length} unpinned line(s): ${list}`, 'every requirement pinned "name==version" with --hash=sha256:<64 hex digits> (pip-compile --generate-hashes writes such a file), or requireHashes: false (warned)');
  }
  return true;
}

/** Binds a base image, refusing an image without a digest unless allowed (then warned). */
export function bindImage(scope: Construct, field: string, image: MeshFunctionBaseImage, allowUnpinned: boolean): string {
  const reference = image.bind(scope, field);
  if (!image.pinned) {
    if (!allowUnpinned) {
      throwInvalid(scope, field, reference, 'an image pinned by digest ("<repository>[:<tag>]@sha256:<64 hex digits>", MeshFunctionBaseImage.fromDigest), or allowUnpinnedImages: true (warned)');
    }
    warn(scope, 'unpinnedImage', `${field} ${reference} is not pinned by digest: the image changes whenever the tag moves, so builds are not reproducible. Pin it with MeshFunctionBaseImage.fromDigest.`);
  }
  return reference;
}
