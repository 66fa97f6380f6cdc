import { Token } from 'aws-cdk-lib';
import { type IConstruct } from 'constructs';
import { throwInvalid } from '../core/errors';

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
// Registry host (optional, with port) and repository path, without tag or digest: `public.ecr.aws/lambda/python`.
const REPOSITORY = /^(?:[A-Za-z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
// `<repository>[:<tag>][@sha256:<digest>]`
const REFERENCE = /^(?<repository>[^@\s]+?)(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/;

/**
 * Defines a base image of a mesh function's container image build: the Lambda Python base image of the final
 * stage, or the Go image that compiles the extension. Pin it by digest (`fromDigest`, or `fromReference` with
 * `@sha256:`): the digest of a multi-platform index, so one pin serves x86_64 and arm64 builds.
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/python-image.html#python-image-base
 * @see https://docs.docker.com/reference/dockerfile/#from
 */
export class MeshFunctionBaseImage {
  /**
   * An image pinned by digest, with an optional tag kept for people (Docker ignores the tag when a digest is given).
   *
   * @param repository the repository without tag or digest, e.g. `public.ecr.aws/lambda/python`
   * @param digest `sha256:` and 64 lower-case hex digits: the digest of the image index (multi-platform manifest list)
   * @param tag the tag the digest was taken from, e.g. `3.13`, for readers of the Dockerfile
   */
  public static fromDigest(repository: string, digest: string, tag?: string): MeshFunctionBaseImage {
    return new MeshFunctionBaseImage(repository, tag, digest, `${repository}${tag !== undefined ? `:${tag}` : ''}@${digest}`);
  }

  /**
   * An image by tag only. Tags move, so the build is not reproducible: a mesh function accepts it only with
   * `allowUnpinnedImages: true`, and warns.
   *
   * @param repository the repository without tag or digest
   * @param tag the tag, e.g. `3.13`
   */
  public static fromTag(repository: string, tag: string): MeshFunctionBaseImage {
    return new MeshFunctionBaseImage(repository, tag, undefined, `${repository}:${tag}`);
  }

  /**
   * An image by its full reference: `<repository>[:<tag>][@sha256:<digest>]`, e.g.
   * `public.ecr.aws/lambda/python:3.13@sha256:<64 hex digits>`. Pinned when it carries a digest.
   *
   * @param reference the image reference as `docker pull` takes it
   */
  public static fromReference(reference: string): MeshFunctionBaseImage {
    const match = typeof reference === 'string' ? REFERENCE.exec(reference) : null;
    return new MeshFunctionBaseImage(match?.groups?.repository ?? '', match?.groups?.tag, match?.groups?.digest, reference, match === null);
  }

  /** The repository, without tag or digest. */
  public readonly repository: string;
  /**
   * The tag.
   * @default - no tag
   */
  public readonly tag?: string;
  /**
   * The digest, `sha256:<64 hex digits>`.
   * @default - not pinned
   */
  public readonly digest?: string;
  /** The reference written after `FROM`. */
  public readonly reference: string;

  private constructor(repository: string, tag: string | undefined, digest: string | undefined, reference: string, private readonly unparsable = false) {
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
    this.reference = reference;
  }

  /** True when the image is pinned by digest. */
  public get pinned(): boolean {
    return this.digest !== undefined;
  }

  /**
   * Checks the reference and returns it, as it goes after `FROM`.
   *
   * @param scope the construct that uses the image (named in errors)
   * @param field the prop that holds it (named in errors)
   */
  public bind(scope: IConstruct, field: string): string {
    if (Token.isUnresolved(this.reference)) {
      throwInvalid(scope, field, this.reference, 'an image reference known at synth (it is written into the Dockerfile)');
    }
    if (this.unparsable || !REPOSITORY.test(this.repository)) {
      throwInvalid(scope, field, this.reference, 'an image reference "<repository>[:<tag>]@sha256:<64 hex digits>", e.g. "public.ecr.aws/lambda/python:3.13@sha256:..."');
    }
    if (this.tag !== undefined && !TAG.test(this.tag)) {
      throwInvalid(scope, `${field}.tag`, this.tag, 'an image tag: letters, digits, "_", "." and "-", at most 128 characters');
    }
    if (this.digest !== undefined && !DIGEST.test(this.digest)) {
      throwInvalid(scope, `${field}.digest`, this.digest, 'a digest "sha256:" followed by 64 lower-case hex digits');
    }
    if (this.digest === undefined && this.tag === undefined) {
      throwInvalid(scope, field, this.reference, 'a tag or, better, a digest (a bare repository means "latest")');
    }
    return this.reference;
  }
}
