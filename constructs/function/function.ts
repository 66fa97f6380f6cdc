import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Acknowledgements } from '../core/validation';
import { MeshFunctionBaseImage } from './base-image';
import { DEFAULT_GO_BUILDER_IMAGE, DEFAULT_PYTHON_BASE_IMAGE } from './private/base-images';
import { writeImageContext } from './private/image-context';
import { bindImage, checkCodeDirectory, checkHandler, checkRequirementsFile } from './private/checks';
import { extensionSourceDir } from './private/extension-sources';
import { finishMeshFunction, prepareMeshFunction, warn } from './private/wiring';
import { type IMeshFunction, type MeshFunctionOptions, type MeshUpstream } from './types';

/**
 * Defines the properties of a {@link MeshFunction}.
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda.DockerImageFunction.html
 */
export interface MeshFunctionProps extends MeshFunctionOptions {
  /**
   * The directory with the handler's code and, optionally, a `requirements.txt` whose every line is pinned
   * (`name==version`) with `--hash=sha256:...` (as `pip-compile --generate-hashes` writes it). Caches, virtual
   * environments, `tests/`, `test_*.py` and `conftest.py` stay out of the image; files that usually hold
   * credentials (`.env`, `.aws/`, `.netrc`, `.pypirc`, ...) too, with a warning.
   */
  readonly code: string;
  /**
   * The handler, `<module>.<function>`, relative to `code`.
   * @default 'app.handler'
   */
  readonly handler?: string;
  /**
   * The base image of the function: an AWS Lambda Python base image (or one built on it), pinned by digest.
   * @default - the Lambda Python base image this library pins (`MeshFunction.DEFAULT_PYTHON_BASE_IMAGE`)
   */
  readonly baseImage?: MeshFunctionBaseImage;
  /**
   * The Go image that compiles the extension, pinned by digest. It runs on the build machine's platform and
   * cross-compiles for the function's architecture.
   * @default - the Go image this library pins (`MeshFunction.DEFAULT_GO_BUILDER_IMAGE`)
   */
  readonly extensionBuilderImage?: MeshFunctionBaseImage;
  /**
   * Refuse a `requirements.txt` line that is not pinned with a SHA-256 hash, and run pip with `--require-hashes`.
   * Turning it off (warned) lets pip resolve and download packages nobody pinned.
   * @default true
   */
  readonly requireHashes?: boolean;
  /**
   * Accept base images given by tag only (warned): the build then changes whenever the tag moves.
   * @default false
   */
  readonly allowUnpinnedImages?: boolean;
}

/**
 * Defines a Lambda function that is a member of a lambda-mesh, packaged as a container image: the handler's code
 * and hash-pinned requirements on the Lambda Python base image, with the mesh extension (compiled from source in
 * a Go stage of the same build) under `/opt/extensions/`.
 *
 * The function runs as the mesh identity `<service>-<version>`: the extension reads that identity's certificate
 * bundle from SSM and listens on `127.0.0.1:<localPort>` for each upstream, forwarding over mTLS through the mesh
 * gateway. It runs in the network's function subnets with the shared function security group (egress to the
 * gateway port and the VPC endpoints only), and its role may read only its own bundle.
 *
 * The image is built by `cdk deploy` (Docker on the deploying machine); synth needs no Docker.
 *
 * @example
 * new MeshFunction(this, 'ModelA', {
 *   mesh, network, gateway, identities,
 *   service: 'model-a', version: 'v1',
 *   code: path.join(__dirname, 'model-handler'),
 * });
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/images-create.html
 * @see https://docs.aws.amazon.com/lambda/latest/dg/extensions-configuration.html#using-extensions-images
 * @see https://developer.hashicorp.com/consul/docs/connect/lambda
 */
export class MeshFunction extends Construct implements IMeshFunction {
  /** The Lambda Python base image used by default: `public.ecr.aws/lambda/python:<tag>@sha256:<index digest>`. */
  public static readonly DEFAULT_PYTHON_BASE_IMAGE: string = DEFAULT_PYTHON_BASE_IMAGE;
  /** The Go image that compiles the extension by default: `golang:<version>@sha256:<index digest>`. */
  public static readonly DEFAULT_GO_BUILDER_IMAGE: string = DEFAULT_GO_BUILDER_IMAGE;

  /** The Lambda function. */
  public readonly fn: lambda.DockerImageFunction;
  /** The mesh identity the function runs as, `<service>-<version>`. */
  public readonly identity: string;
  /** The function's name: the `functionName` prop as given (known at synth), else the deploy-time name. */
  public readonly functionName: string;
  /** What the function may call, with local ports and environment variables. */
  public readonly upstreams: MeshUpstream[];
  /**
   * The alias `live` with provisioned concurrency.
   * @default - none without provisioned concurrency
   */
  public readonly alias?: lambda.Alias;
  /** The function's log group (KMS-encrypted). */
  public readonly logGroup: logs.ILogGroup;
  /** The shared function security group of the network: rules added here apply to every mesh function. */
  public readonly connections: ec2.Connections;
  /** The function's role. */
  public readonly grantPrincipal: iam.IPrincipal;
  /** The Dockerfile of the image, as generated. */
  public readonly dockerfile: string;
  /** The generated build context directory (content-addressed). */
  public readonly buildContextDirectory: string;

  constructor(scope: Construct, id: string, props: MeshFunctionProps) {
    super(scope, id);
    const codeDir = checkCodeDirectory(this, props.code);
    const handler = props.handler ?? 'app.handler';
    checkHandler(this, codeDir, handler, '.py');
    const allowUnpinned = props.allowUnpinnedImages ?? false;
    const baseImage = bindImage(this, 'baseImage', props.baseImage ?? MeshFunctionBaseImage.fromReference(DEFAULT_PYTHON_BASE_IMAGE), allowUnpinned);
    const builderImage = bindImage(this, 'extensionBuilderImage', props.extensionBuilderImage ?? MeshFunctionBaseImage.fromReference(DEFAULT_GO_BUILDER_IMAGE), allowUnpinned);
    const requireHashes = props.requireHashes ?? true;
    const requirements = checkRequirementsFile(this, codeDir, requireHashes);

    const settings = prepareMeshFunction(this, props);
    const context = writeImageContext({
      extensionDir: extensionSourceDir(),
      codeDir,
      handler,
      pythonImage: baseImage,
      goImage: builderImage,
      requirements,
      requireHashes,
    });
    if (context.secretFilesSkipped.length > 0) {
      warn(this, 'secretFilesSkipped', `Left out of the image because such files usually hold credentials: ${context.secretFilesSkipped.join(', ')} (in ${codeDir}). Pass configuration through environment variables or SSM instead.`);
    }
    this.dockerfile = context.dockerfile;
    this.buildContextDirectory = context.directory;

    this.fn = new lambda.DockerImageFunction(this, 'Function', {
      ...settings.functionProps,
      code: lambda.DockerImageCode.fromImageAsset(context.directory, {
        // The Dockerfile's TARGETARCH, and so the extension's GOARCH and pip's wheels, follow this.
        platform: settings.functionProps.architecture.name === lambda.Architecture.X86_64.name ? Platform.LINUX_AMD64 : Platform.LINUX_ARM64,
      }),
    });
    this.node.defaultChild = this.fn;
    // CDK grants the pull of the image asset's repository to the role; the authorization token has no resource.
    Acknowledgements.awsSolutions(settings.role, 'IAM5[Resource::*]', 'ecr:GetAuthorizationToken, which CDK grants so Lambda can pull the image asset, supports no resource-level permissions; the pull itself is scoped to the asset repository.');
    this.alias = finishMeshFunction(this, this.fn, settings, props);
    this.identity = settings.identity;
    this.functionName = props.functionName ?? this.fn.functionName;
    this.upstreams = settings.upstreams;
    this.logGroup = settings.logGroup;
    this.connections = this.fn.connections;
    this.grantPrincipal = this.fn.grantPrincipal;
  }
}
