import { Names, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { ConsulDefaults } from './types';

const VERSION = /^\d+\.\d+\.\d+$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
// registry host (optional) and repository path, without tag or digest: `public.ecr.aws/hashicorp/consul-dataplane`.
const REPOSITORY = /^(?:[A-Za-z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const PRIVATE_ECR_REGISTRY = /^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;
const ECR_PUBLIC = 'public.ecr.aws';
/** ECR's rule for a pull-through cache prefix. */
const CACHE_PREFIX = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/**
 * What a {@link ConsulImage} resolves to for a container.
 */
export interface ConsulImageConfig {
  /** The image for an ECS container definition. */
  readonly containerImage: ecs.ContainerImage;
  /** The full image reference, for `docker pull` and Helm values (tokens for account and region). */
  readonly imageName: string;
  /** True when the image comes from a public registry, so pulling it needs a NAT path. */
  readonly needsInternet: boolean;
  /**
   * Grants what pulling the image needs beyond what ECS grants the execution role itself: for an image of a
   * pull-through cache, importing it from upstream and creating its repository on the first pull. Call it for
   * every role that pulls (an EC2 instance role, an EKS node role; ECS execution roles are granted by the construct
   * that binds the image).
   */
  grantPull(grantee: iam.IGrantable): void;
  /**
   * The repository prefix of the pull-through cache the image comes through.
   * @default - not through a cache
   */
  readonly cacheRepositoryPrefix?: string;
}

/** Where an image comes from, before it is bound. */
interface ImageSource {
  /** `public.ecr.aws/hashicorp/consul-ecs` (no tag). */
  readonly repository: string;
  /** `:0.10.0` or `@sha256:...`. */
  readonly reference: string;
}

/**
 * Defines a container image of the mesh's Consul parts: consul-dataplane (Envoy; every sidecar and the mesh
 * gateway), consul-ecs (`mesh-init`, `health-sync` in ECS tasks) and the consul-k8s images. Pin by version or, better,
 * by digest; route public images through a {@link ConsulImageCache} for subnets without internet.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/dataplane
 * @see https://developer.hashicorp.com/consul/docs/ecs
 */
export class ConsulImage {
  /**
   * HashiCorp's consul-dataplane image on Amazon ECR Public: `public.ecr.aws/hashicorp/consul-dataplane:<version>`.
   *
   * @param version `MAJOR.MINOR.PATCH`
   */
  public static dataplane(version: string = ConsulDefaults.DATAPLANE_VERSION): ConsulImage {
    return ConsulImage.publicVersion('hashicorp/consul-dataplane', version);
  }

  /**
   * HashiCorp's consul-ecs image on Amazon ECR Public: `public.ecr.aws/hashicorp/consul-ecs:<version>`.
   *
   * @param version `MAJOR.MINOR.PATCH`
   */
  public static consulEcs(version: string = ConsulDefaults.CONSUL_ECS_VERSION): ConsulImage {
    return ConsulImage.publicVersion('hashicorp/consul-ecs', version);
  }

  /**
   * HashiCorp's Consul image on Amazon ECR Public: `public.ecr.aws/hashicorp/consul:<version>`.
   *
   * @param version `MAJOR.MINOR.PATCH`
   */
  public static consul(version: string = ConsulDefaults.CONSUL_VERSION): ConsulImage {
    return ConsulImage.publicVersion('hashicorp/consul', version);
  }

  /**
   * HashiCorp's consul-k8s control plane image on Amazon ECR Public: `public.ecr.aws/hashicorp/consul-k8s-control-plane:<version>`.
   *
   * @param version `MAJOR.MINOR.PATCH`
   */
  public static consulK8sControlPlane(version: string = ConsulDefaults.CONSUL_K8S_VERSION): ConsulImage {
    return ConsulImage.publicVersion('hashicorp/consul-k8s-control-plane', version);
  }

  /**
   * An image pinned by digest: `<repository>@sha256:<64 hex digits>`. An image in a private ECR registry
   * (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`) is pulled through the network's ECR endpoints, and the
   * pull from that repository is granted; any other registry needs a NAT path (or a {@link ConsulImageCache}).
   *
   * @param repository the repository without tag or digest, e.g. `public.ecr.aws/hashicorp/consul-dataplane`
   * @param digest `sha256:` and 64 lower-case hex digits
   */
  public static fromDigest(repository: string, digest: string): ConsulImage {
    return new ConsulImage(
      (scope, field) => {
        if (!Token.isUnresolved(repository) && !REPOSITORY.test(repository)) {
          throwInvalid(scope, field, repository, 'an image repository without tag or digest, such as "public.ecr.aws/hashicorp/consul-dataplane"');
        }
        if (!Token.isUnresolved(digest) && !DIGEST.test(digest)) {
          throwInvalid(scope, field, digest, 'a digest "sha256:" followed by 64 lower-case hex digits');
        }
        return { repository, reference: `@${digest}` };
      },
      (scope, field, source) => {
        const imageName = `${source.repository}${source.reference}`;
        const ecrRepository = Token.isUnresolved(source.repository) ? undefined : privateEcrRepository(scope, `${field}Repository`, source.repository);
        if (ecrRepository) {
          return ecrConfig(ecs.ContainerImage.fromEcrRepository(ecrRepository, digest), imageName, ecrRepository.repositoryArn);
        }
        return { containerImage: ecs.ContainerImage.fromRegistry(imageName), imageName, needsInternet: true, grantPull: () => undefined };
      },
    );
  }

  /**
   * An image in your own ECR repository, by tag or (better) digest. It is pulled through the network's ECR
   * endpoints, so it works without a NAT path; the pull is granted.
   *
   * @param repository the repository
   * @param tagOrDigest a tag or `sha256:<64 hex digits>`
   */
  public static fromEcrRepository(repository: ecr.IRepository, tagOrDigest: string): ConsulImage {
    return new ConsulImage(
      (scope, field) => {
        if (!Token.isUnresolved(tagOrDigest) && !TAG.test(tagOrDigest) && !DIGEST.test(tagOrDigest)) {
          throwInvalid(scope, field, tagOrDigest, 'an image tag or a digest "sha256:" followed by 64 lower-case hex digits');
        }
        return { repository: repository.repositoryUri, reference: DIGEST.test(tagOrDigest) ? `@${tagOrDigest}` : `:${tagOrDigest}` };
      },
      () => {
        const containerImage = ecs.ContainerImage.fromEcrRepository(repository, tagOrDigest);
        return ecrConfig(containerImage, containerImage.imageName, repository.repositoryArn);
      },
    );
  }

  private static publicVersion(path: string, version: string): ConsulImage {
    return new ConsulImage(
      (scope, field) => {
        if (!Token.isUnresolved(version) && !VERSION.test(version)) {
          throwInvalid(scope, field, version, 'a version MAJOR.MINOR.PATCH such as "2.0.3" (no "v", no "latest")');
        }
        return { repository: `${ECR_PUBLIC}/${path}`, reference: `:${version}` };
      },
      (_scope, _field, source) => {
        const imageName = `${source.repository}${source.reference}`;
        return { containerImage: ecs.ContainerImage.fromRegistry(imageName), imageName, needsInternet: true, grantPull: () => undefined };
      },
    );
  }

  private constructor(
    private readonly check: (scope: Construct, field: string) => ImageSource,
    private readonly make: (scope: Construct, field: string, source: ImageSource) => ConsulImageConfig,
  ) {}

  /**
   * Checks the image reference and returns what a container needs.
   *
   * @param scope the construct that uses the image (named in errors)
   * @param field the prop that holds it (named in errors)
   */
  public bind(scope: Construct, field: string): ConsulImageConfig {
    return this.make(scope, field, this.check(scope, field));
  }

  /** @internal The same image, pulled through `cache`: only for images of ECR Public. */
  public _throughCache(cache: ConsulImageCache): ConsulImage {
    return new ConsulImage(
      (scope, field) => {
        const source = this.check(scope, field);
        if (Token.isUnresolved(source.repository) || !source.repository.startsWith(`${ECR_PUBLIC}/`)) {
          throwInvalid(scope, field, source.repository, `an image of ${ECR_PUBLIC} (the cache ${cache.node.path} pulls through from there only)`);
        }
        return source;
      },
      (scope, field, source) => {
        const name = `${cache.repositoryPrefix}/${source.repository.slice(ECR_PUBLIC.length + 1)}`;
        const repository = ecr.Repository.fromRepositoryAttributes(scope, `${field}Repository`, {
          repositoryName: name,
          repositoryArn: Stack.of(scope).formatArn({ service: 'ecr', resource: 'repository', resourceName: name }),
        });
        const tagOrDigest = source.reference.slice(1);
        const containerImage = ecs.ContainerImage.fromEcrRepository(repository, tagOrDigest);
        const base = ecrConfig(containerImage, `${repository.repositoryUri}${source.reference}`, repository.repositoryArn);
        return {
          ...base,
          cacheRepositoryPrefix: cache.repositoryPrefix,
          grantPull: (grantee: iam.IGrantable) => {
            base.grantPull(grantee);
            cache.grantFirstPull(grantee);
          },
        };
      },
    );
  }
}

/**
 * Properties of a {@link ConsulImageCache}.
 */
export interface ConsulImageCacheProps {
  /**
   * The prefix of the cache's repositories. Pull-through cache rules are per account and region: give each
   * environment its own.
   * @default `ecr-public-<8 characters derived from the construct path>`
   */
  readonly repositoryPrefix?: string;
}

/**
 * Defines an Amazon ECR pull-through cache of Amazon ECR Public, so that tasks, instances and nodes in subnets
 * without internet pull HashiCorp's images (consul-dataplane, consul-ecs, consul-k8s) through the VPC's ECR
 * endpoints: ECR fetches an image from ECR Public on its first pull and serves it from the account afterwards.
 *
 * @see https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html
 */
export class ConsulImageCache extends Construct {
  /** The prefix of the cached repositories (`<prefix>/hashicorp/consul-ecs`). */
  public readonly repositoryPrefix: string;

  constructor(scope: Construct, id: string, props: ConsulImageCacheProps = {}) {
    super(scope, id);
    this.repositoryPrefix = props.repositoryPrefix ?? `ecr-public-${Names.uniqueId(this).slice(-8).toLowerCase()}`;
    if (!Token.isUnresolved(this.repositoryPrefix) && (this.repositoryPrefix.length < 2 || this.repositoryPrefix.length > 30 || !CACHE_PREFIX.test(this.repositoryPrefix))) {
      throwInvalid(this, 'repositoryPrefix', this.repositoryPrefix, "2 to 30 lower-case letters, digits, '.', '_', '-' and '/' (ECR's rule for a pull-through cache prefix)");
    }
    new ecr.CfnPullThroughCacheRule(this, 'Resource', {
      ecrRepositoryPrefix: this.repositoryPrefix,
      upstreamRegistry: 'ecr-public',
      upstreamRegistryUrl: ECR_PUBLIC,
    });
  }

  /** `image` (of ECR Public), pulled through this cache. */
  public image(image: ConsulImage): ConsulImage {
    return image._throughCache(this);
  }

  /**
   * Lets `grantee` pull an image for the first time: ECR creates the repository and imports the image then.
   * ECR asks for both on the puller's behalf, so they cannot be scoped beyond the cache's prefix.
   */
  public grantFirstPull(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
      // As the stack knows them (literals in a pinned stack), so the acknowledgements match the finding.
      resourceArns: [Stack.of(this).formatArn({ service: 'ecr', resource: 'repository', resourceName: `${this.repositoryPrefix}/*` })],
    });
  }
}

function ecrConfig(containerImage: ecs.ContainerImage, imageName: string, repositoryArn: string): ConsulImageConfig {
  return {
    containerImage,
    imageName,
    needsInternet: false,
    grantPull: (grantee: iam.IGrantable) => {
      iam.Grant.addToPrincipal({ grantee, actions: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'], resourceArns: [repositoryArn] });
      iam.Grant.addToPrincipal({ grantee, actions: ['ecr:GetAuthorizationToken'], resourceArns: ['*'] });
    },
  };
}

/**
 * The repository of a private ECR image URI (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<name>`), imported so
 * the pull can be granted; undefined for any other registry.
 */
function privateEcrRepository(scope: Construct, id: string, repository: string): ecr.IRepository | undefined {
  const slash = repository.indexOf('/');
  const match = slash > 0 ? PRIVATE_ECR_REGISTRY.exec(repository.slice(0, slash)) : null;
  if (!match) {
    return undefined;
  }
  const [, account, region, china] = match;
  const name = repository.slice(slash + 1);
  return ecr.Repository.fromRepositoryAttributes(scope, id, {
    repositoryName: name,
    repositoryArn: `arn:${china ? 'aws-cn' : 'aws'}:ecr:${region}:${account}:repository/${name}`,
  });
}
