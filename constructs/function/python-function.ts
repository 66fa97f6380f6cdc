import * as path from 'path';
import { PythonFunction } from '@aws-cdk/aws-lambda-python-alpha';
import { Annotations, AssetHashType, AssetStaging, DockerImage, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { Acknowledgements } from '../core/validation';
import { MeshFunctionBaseImage } from './base-image';
import { DEFAULT_GO_BUILDER_IMAGE, DEFAULT_PYTHON_BASE_IMAGE } from './private/base-images';
import { bindImage, checkCodeDirectory, checkHandler, checkRequirementsFile } from './private/checks';
import { extensionSourceDir } from './private/extension-sources';
import { finishMeshFunction, prepareMeshFunction } from './private/wiring';
import { buildExtensionLocally, checkSizeBudget, containerBuildCommand, extensionSourceHash, hasLocalGo, mib, pythonBundlingScript } from './private/zip-bundling';
import { type IMeshFunction, type MeshFunctionOptions, type MeshUpstream } from './types';

/**
 * Defines the properties of a {@link MeshExtensionLayer}.
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/chapter-layers.html
 */
export interface MeshExtensionLayerProps {
  /**
   * The architecture the extension is compiled for.
   * @default lambda.Architecture.ARM_64
   */
  readonly architecture?: lambda.Architecture;
  /**
   * The Go image that compiles the extension when no local `go` is found, pinned by digest.
   * @default - the Go image this library pins (`MeshFunction.DEFAULT_GO_BUILDER_IMAGE`)
   */
  readonly builderImage?: MeshFunctionBaseImage;
  /**
   * Accept a builder image given by tag only (warned).
   * @default false
   */
  readonly allowUnpinnedImages?: boolean;
}

/**
 * Defines a Lambda layer with the mesh extension, for zip-packaged functions: the static Go binary at
 * `extensions/lambda-mesh`, which Lambda starts from `/opt/extensions/`. It is compiled at synth by the local Go
 * when there is one (CGO off, GOARCH of the architecture, standard library only, nothing fetched), else in the
 * pinned Go image with Docker.
 *
 * Use {@link MeshExtensionLayer.forArchitecture} for the one layer per stack and architecture that mesh functions share.
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/extensions-configuration.html#using-extensions-config
 */
export class MeshExtensionLayer extends lambda.LayerVersion {
  /**
   * Returns the stack's layer for `architecture`, creating it on first use.
   *
   * @param scope any construct in the stack
   * @param props the layer's architecture and builder image (a second call must ask for the same builder image)
   */
  public static forArchitecture(scope: IConstruct, props: MeshExtensionLayerProps = {}): MeshExtensionLayer {
    const stack = Stack.of(scope);
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const id = `LambdaMeshExtensionLayer${architecture.name === lambda.Architecture.X86_64.name ? 'X8664' : 'Arm64'}`;
    const existing = stack.node.tryFindChild(id) as MeshExtensionLayer | undefined;
    if (existing) {
      const wanted = (props.builderImage ?? MeshFunctionBaseImage.fromReference(DEFAULT_GO_BUILDER_IMAGE)).reference;
      if (existing.builderImage !== wanted) {
        throwInvalid(scope, 'extensionBuilderImage', wanted, `the builder image of the stack's ${architecture.name} extension layer, ${existing.builderImage} (one layer per stack and architecture)`);
      }
      return existing;
    }
    return new MeshExtensionLayer(stack, id, props);
  }

  /** The `FROM` reference of the Go builder image. */
  public readonly builderImage: string;
  /** The architecture the extension is compiled for. */
  public readonly architecture: lambda.Architecture;

  constructor(scope: Construct, id: string, props: MeshExtensionLayerProps = {}) {
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    // Checked before the asset is bundled, so a bad input builds nothing; errors name the scope given.
    if (architecture.name !== lambda.Architecture.ARM_64.name && architecture.name !== lambda.Architecture.X86_64.name) {
      throwInvalid(scope, 'architecture', architecture.name, 'lambda.Architecture.ARM_64 or lambda.Architecture.X86_64');
    }
    const builderImage = bindImage(scope, 'extensionBuilderImage', props.builderImage ?? MeshFunctionBaseImage.fromReference(DEFAULT_GO_BUILDER_IMAGE), props.allowUnpinnedImages ?? false);
    const goarch = architecture.name === lambda.Architecture.X86_64.name ? 'amd64' : 'arm64';
    const extensionDir = extensionSourceDir();
    super(scope, id, {
      description: `lambda-mesh extension (${architecture.name}): the Consul mesh proxy, in /opt/extensions/lambda-mesh`,
      compatibleArchitectures: [architecture],
      code: lambda.Code.fromAsset(extensionDir, {
        exclude: ['*_test.go', '*.md'],
        // The same sources give a different binary per architecture and builder: both belong in the hash.
        assetHashType: AssetHashType.CUSTOM,
        assetHash: extensionSourceHash(extensionDir, `${architecture.name}:${builderImage}`),
        bundling: {
          image: DockerImage.fromRegistry(builderImage),
          command: containerBuildCommand(goarch),
          local: {
            tryBundle(outputDir: string): boolean {
              if (!hasLocalGo()) {
                return false;
              }
              buildExtensionLocally(extensionDir, outputDir, goarch);
              return true;
            },
          },
        },
      }),
    });
    this.builderImage = builderImage;
    this.architecture = architecture;
  }
}

/**
 * Defines the properties of a {@link MeshPythonFunction}.
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/aws-lambda-python-alpha-readme.html
 */
export interface MeshPythonFunctionProps extends MeshFunctionOptions {
  /**
   * The directory with the handler's code and, optionally, a `requirements.txt` pinned with hashes (see
   * {@link MeshFunctionProps.code}). The same files stay out as in a MeshFunction image.
   */
  readonly code: string;
  /**
   * The handler, `<module>.<function>`, relative to `code`.
   * @default 'app.handler'
   */
  readonly handler?: string;
  /**
   * The Python runtime. The requirements are installed in the Lambda base image of the same Python version.
   * @default lambda.Runtime.PYTHON_3_13
   */
  readonly runtime?: lambda.Runtime;
  /**
   * The image the requirements are installed in (with Docker, at synth), pinned by digest: a Lambda Python base
   * image of the runtime's version, so compiled wheels match the runtime and the architecture.
   * @default - the Lambda Python base image this library pins (`MeshFunction.DEFAULT_PYTHON_BASE_IMAGE`); required for another runtime
   */
  readonly bundlingImage?: MeshFunctionBaseImage;
  /**
   * The Go image that compiles the extension layer when no local `go` is found, pinned by digest.
   * @default - the Go image this library pins (`MeshFunction.DEFAULT_GO_BUILDER_IMAGE`)
   */
  readonly extensionBuilderImage?: MeshFunctionBaseImage;
  /**
   * More layers. They count towards the 250 MB unzipped budget.
   * @default - only the extension layer
   */
  readonly layers?: lambda.ILayerVersion[];
  /**
   * Refuse a `requirements.txt` line that is not pinned with a SHA-256 hash, and run pip in hash-checking mode.
   * @default true
   */
  readonly requireHashes?: boolean;
  /**
   * Accept images given by tag only (warned).
   * @default false
   */
  readonly allowUnpinnedImages?: boolean;
}

/**
 * Defines a zip-packaged Python Lambda function that is a member of a lambda-mesh: a `PythonFunction`
 * (`@aws-cdk/aws-lambda-python-alpha`) with the mesh extension as a layer ({@link MeshExtensionLayer}). Identity,
 * upstreams, network, IAM and concurrency work as in {@link MeshFunction}.
 *
 * Bundling installs the requirements with Docker, in the pinned Lambda Python base image, at synth. The unzipped
 * size of the code and all layers is measured after bundling and must stay within Lambda's 250 MB; synth reports
 * it (or that bundling was skipped, as in tests with `aws:cdk:bundling-stacks: []`).
 *
 * @example
 * new MeshPythonFunction(this, 'ModelA', {
 *   mesh, network, gateway, identities,
 *   service: 'model-a', version: 'v1',
 *   code: path.join(__dirname, 'model-handler'),
 * });
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/aws-lambda-python-alpha-readme.html
 * @see https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#function-configuration-deployment-and-execution
 */
export class MeshPythonFunction extends Construct implements IMeshFunction {
  /** The Lambda function. */
  public readonly fn: PythonFunction;
  /** The extension layer. */
  public readonly extensionLayer: MeshExtensionLayer;
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
  /**
   * The unzipped size of the code and all layers, in bytes, measured after bundling.
   * @default - not measured: bundling was skipped for this stack
   */
  public readonly unzippedSize?: number;

  constructor(scope: Construct, id: string, props: MeshPythonFunctionProps) {
    super(scope, id);
    const codeDir = checkCodeDirectory(this, props.code);
    const handler = props.handler ?? 'app.handler';
    checkHandler(this, codeDir, handler, '.py');
    const runtime = props.runtime ?? lambda.Runtime.PYTHON_3_13;
    const defaultImage = MeshFunctionBaseImage.fromReference(DEFAULT_PYTHON_BASE_IMAGE);
    if (runtime.family !== lambda.RuntimeFamily.PYTHON) {
      throwInvalid(this, 'runtime', runtime.name, 'a Python runtime such as lambda.Runtime.PYTHON_3_13');
    }
    if (props.bundlingImage === undefined && runtime.name !== `python${defaultImage.tag}`) {
      throwInvalid(this, 'bundlingImage', `(the default, ${defaultImage.reference}, for ${runtime.name})`, `a Lambda Python base image of ${runtime.name}, pinned by digest (MeshFunctionBaseImage.fromDigest('public.ecr.aws/lambda/python', 'sha256:...', '${runtime.name.replace('python', '')}')), or runtime ${'python'}${defaultImage.tag ?? ''}`);
    }
    const allowUnpinned = props.allowUnpinnedImages ?? false;
    const bundlingImage = bindImage(this, 'bundlingImage', props.bundlingImage ?? defaultImage, allowUnpinned);
    const requireHashes = props.requireHashes ?? true;
    checkRequirementsFile(this, codeDir, requireHashes);
    const settings = prepareMeshFunction(this, props);

    this.extensionLayer = MeshExtensionLayer.forArchitecture(this, {
      architecture: settings.functionProps.architecture,
      ...(props.extensionBuilderImage ? { builderImage: props.extensionBuilderImage } : {}),
      allowUnpinnedImages: allowUnpinned,
    });
    const modulePath = handler.split('.').slice(0, -1).join('/');
    this.fn = new PythonFunction(this, 'Function', {
      ...settings.functionProps,
      entry: codeDir,
      runtime,
      index: `${modulePath}.py`,
      handler: handler.split('.').slice(-1)[0],
      layers: [this.extensionLayer, ...(props.layers ?? [])],
      bundling: {
        image: DockerImage.fromRegistry(bundlingImage),
        // The Lambda base image's entrypoint is the runtime interface; run Python directly.
        entrypoint: ['python3'],
        command: ['-c', pythonBundlingScript(settings.functionProps.architecture.name === lambda.Architecture.X86_64.name ? 'amd64' : 'arm64')],
        environment: {
          PIP_NO_CACHE_DIR: '1',
          ...(requireHashes ? { PIP_REQUIRE_HASHES: '1' } : {}),
        },
      },
    });
    this.node.defaultChild = this.fn;
    if (props.bundlingImage === undefined) {
      Acknowledgements.awsSolutions(this.fn, 'L1', `The runtime is ${runtime.name}, the version of the pinned Lambda Python base image the requirements are installed in (compiled wheels must match it); a newer runtime needs bundlingImage pinned to a base image of that version.`);
    }
    this.alias = finishMeshFunction(this, this.fn, settings, props);
    this.identity = settings.identity;
    this.functionName = props.functionName ?? this.fn.functionName;
    this.upstreams = settings.upstreams;
    this.logGroup = settings.logGroup;
    this.connections = this.fn.connections;
    this.grantPrincipal = this.fn.grantPrincipal;

    if (!Stack.of(this).bundlingRequired) {
      Annotations.of(this).addInfo(`lambda-mesh: the unzipped size of ${this.identity} was not measured: bundling was skipped for this stack (aws:cdk:bundling-stacks), so the code and the extension layer were not built.`);
      return;
    }
    const parts: Array<[string, string]> = [['code', stagedPath(this.fn)], ['extension layer', stagedPath(this.extensionLayer)]];
    for (const [i, layer] of (props.layers ?? []).entries()) {
      const staged = tryStagedPath(layer);
      if (staged === undefined) {
        Annotations.of(this).addWarningV2('lambda-mesh:function:layerNotMeasured', `layers[${i}] (${layer.node.path}) is not an asset of this app, so its size is not counted in the 250 MB budget.`);
      } else {
        parts.push([`layers[${i}]`, staged]);
      }
    }
    this.unzippedSize = checkSizeBudget(this, parts);
    Annotations.of(this).addInfo(`lambda-mesh: ${this.identity} is ${mib(this.unzippedSize)} unzipped with its layers (${path.basename(parts[0][1])}), of Lambda's 250 MiB.`);
  }
}

/** The staged (bundled) directory of a function's or layer's asset code. */
function stagedPath(owner: IConstruct): string {
  const staged = tryStagedPath(owner);
  if (staged === undefined) {
    throw new Error(`lambda-mesh: ${owner.node.path} has no staged asset`);
  }
  return staged;
}

function tryStagedPath(owner: IConstruct): string | undefined {
  const staging = owner.node.tryFindChild('Code')?.node.tryFindChild('Stage');
  return staging instanceof AssetStaging ? staging.absoluteStagedPath : undefined;
}
