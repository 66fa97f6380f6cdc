import { describeValue, LambdaMeshError } from './errors';
import { stageFiles } from './private/stage';

/** A directory name under the temporary directory: one path segment, no dot segments. */
const KIND = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Defines a directory of generated files for an asset that must exist when its construct is created (a Docker
 * build context, a script for an S3 asset), named by the SHA-256 of its content: the same files give the same
 * directory, and so the same asset hash. `MeshFunction` stages its image's build context the same way.
 *
 * @example
 * const context = StagedDirectory.fromFiles('my-app-image-context', '1', {
 *   'Dockerfile': 'FROM public.ecr.aws/docker/library/busybox@sha256:...\nCOPY app.sh /app.sh\n',
 *   'app.sh': '#!/bin/sh\necho hello\n',
 * });
 * ecs.ContainerImage.fromAsset(context);
 */
export class StagedDirectory {
  /**
   * Writes `files` into `<tmpdir>/<kind>/<hash>` and returns that directory. `<hash>` covers `kind`, `version` and
   * every file's path and content. A directory is written once, to a temporary name and then renamed, so
   * concurrent synths never see half of it; files get mode 0644 whatever the umask. It is outside the cloud
   * assembly because the asset must exist when its construct is created; CDK stages its own copy into `cdk.out`.
   *
   * @param kind the directory under the temporary directory, one path segment, e.g. `my-app-image-context`
   * @param version bump it when the layout of what you stage changes, so an old directory is never reused
   * @param files relative paths with `/` (no `.` or `..` segments) -> UTF-8 text
   */
  public static fromFiles(kind: string, version: string, files: { [path: string]: string }): string {
    const fail = (field: string, given: unknown, expected: string): never => {
      const details = { location: 'StagedDirectory.fromFiles', field, given: describeValue(given), expected };
      throw new LambdaMeshError(details);
    };
    if (typeof kind !== 'string' || !KIND.test(kind)) {
      fail('kind', kind, "one path segment of letters, digits, '.', '_' and '-', starting with a letter or digit");
    }
    if (typeof version !== 'string') {
      fail('version', version, 'a string');
    }
    const staged = new Map<string, Buffer>();
    for (const [name, content] of Object.entries(files ?? {})) {
      const segments = name.split('/');
      if (segments.some((s) => s === '' || s === '.' || s === '..')) {
        fail(`files[${JSON.stringify(name)}]`, name, "a relative path with '/' and no empty, '.' or '..' segments");
      }
      if (typeof content !== 'string') {
        fail(`files[${JSON.stringify(name)}]`, content, 'the file content as a string');
      }
      staged.set(name, Buffer.from(content));
    }
    if (staged.size === 0) {
      fail('files', files, 'at least one file');
    }
    return stageFiles(kind, version, staged);
  }

  private constructor() {}
}
