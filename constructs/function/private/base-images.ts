/**
 * The base images a mesh function's container image is built from when the user names none. Both are pinned by
 * the digest of the image index (multi-platform manifest list), never by a per-platform manifest: one pin then
 * builds for `linux/amd64` and `linux/arm64` alike, and a moved tag cannot change what gets built.
 *
 * The digests were written without registry access: each was taken from public repositories that pin images by
 * digest (as Renovate and Dependabot do, with the index digest), and only where two or more independent
 * repositories agree on it. To move to a newer image, bump the tag and the digest together from
 * `docker buildx imagetools inspect <image>:<tag>` (the top-level `Digest:`, not a platform's).
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/python-image.html#python-image-base
 * @see https://docs.docker.com/build/building/multi-platform/
 * @see https://docs.renovatebot.com/docker/#digest-pinning
 */

/**
 * The AWS Lambda Python 3.13 base image (`public.ecr.aws/lambda/python:3.13`, Amazon Linux 2023), pinned by its
 * image-index digest, which covers `linux/amd64` and `linux/arm64`.
 *
 * The function's requirements must carry wheels for CPython 3.13 (`cp313`, manylinux `x86_64` and `aarch64`).
 *
 * Where the digest was found: `gkwa/itsfergus` `Dockerfile` (updated by Renovate, `config:best-practices`) and
 * `patheard/compass` `Dockerfile`, both `FROM public.ecr.aws/lambda/python:3.13@sha256:5d94179d…`. It is a 2025
 * build (the latter Dockerfile pairs it with aws-lambda-adapter 0.9.1): newer 3.13 digests were seen in one
 * repository each and not taken. AWS rebuilds this image often; bump it.
 *
 * @see https://gallery.ecr.aws/lambda/python
 */
export const DEFAULT_PYTHON_BASE_IMAGE: string =
  'public.ecr.aws/lambda/python:3.13@sha256:5d94179d6515bbd3c63e0e31cfe45fff1c876ae74958051e36a177d693713886';

/**
 * The Docker Official Image for Go 1.27.2 (`golang:1.27.2`, Debian), pinned by its image-index digest, which
 * covers `linux/amd64` and `linux/arm64` among others. It only compiles the extension (standard library only,
 * `go 1.19` in go.mod) with `CGO_ENABLED=0`; only the static binary it builds is copied into the function's
 * image.
 *
 * Docker Hub rather than its ECR Public mirror (`public.ecr.aws/docker/library/golang`): every repository that
 * agreed on this digest pulls it from Docker Hub, and the mirror's digest was not confirmed here. One cached pull
 * per build host stays well within Docker Hub's anonymous pull limit.
 *
 * Where the digest was found: `vexxhost/openstack_database_exporter` `Dockerfile` (`FROM golang:1.27.2@sha256:…`),
 * and the same `golang:1.27.2@sha256:5bc7f572…` in nine more files of other repositories, one of which notes it was
 * resolved from the registry index on 2026-10-08; another pins `golang:1.27@sha256:5bc7f572…`.
 *
 * @see https://hub.docker.com/_/golang
 */
export const DEFAULT_GO_BUILDER_IMAGE: string =
  'golang:1.27.2@sha256:5bc7f572bbaa98885a3a1fd9c0aa76b59e3e14e8628bfc316bbfd0c701e4818c';
