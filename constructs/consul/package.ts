import type * as s3 from 'aws-cdk-lib/aws-s3';
import { describeValue, LambdaMeshError } from '../core/errors';

/**
 * Where the Consul servers install Consul from.
 */
export abstract class ConsulPackage {
  /**
   * HashiCorp's RPM repository. The servers check the repository's signing key against a pinned fingerprint
   * before they trust it, and dnf checks every package's signature. Needs egress to rpm.releases.hashicorp.com
   * (the mesh network's server subnets have it by default).
   */
  public static hashicorpRepository(): ConsulPackage {
    return new HashicorpRepositoryPackage();
  }

  /**
   * An RPM you mirror in S3, for server subnets without egress. The servers check its SHA-256 before installing.
   *
   * @param bucket the bucket holding the RPM (the servers get read access to this key)
   * @param key the object key, e.g. `mirror/consul-1.21.5-1.aarch64.rpm` (its architecture must match the instances)
   * @param sha256 the RPM's SHA-256, 64 hex digits
   */
  public static fromBucket(bucket: s3.IBucket, key: string, sha256: string): ConsulPackage {
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      throw new LambdaMeshError({ location: 'ConsulPackage.fromBucket', field: 'sha256', given: describeValue(sha256), expected: 'the SHA-256 of the RPM: 64 lower-case hex digits' });
    }
    if (!key || key.startsWith('/')) {
      throw new LambdaMeshError({ location: 'ConsulPackage.fromBucket', field: 'key', given: describeValue(key), expected: 'an S3 object key, not starting with /' });
    }
    return new BucketPackage(bucket, key, sha256);
  }

  /** True when installing needs egress to the internet. */
  public abstract readonly needsEgress: boolean;

  /** @internal */
  public abstract _bind(): { readonly source: { readonly kind: 'hashicorp-repository' } | { readonly kind: 's3'; readonly bucket: string; readonly key: string; readonly sha256: string }; readonly bucket?: s3.IBucket };
}

class HashicorpRepositoryPackage extends ConsulPackage {
  public readonly needsEgress = true;

  public _bind(): ReturnType<ConsulPackage['_bind']> {
    return { source: { kind: 'hashicorp-repository' } };
  }
}

class BucketPackage extends ConsulPackage {
  public readonly needsEgress = false;

  constructor(private readonly bucket: s3.IBucket, private readonly key: string, private readonly sha256: string) {
    super();
  }

  public _bind(): ReturnType<ConsulPackage['_bind']> {
    return { source: { kind: 's3', bucket: this.bucket.bucketName, key: this.key, sha256: this.sha256 }, bucket: this.bucket };
  }
}
