import { CfnJson, Duration, Stack, Token } from 'aws-cdk-lib';
import type * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../core/names';
import { Acknowledgements } from '../core/validation';

/** The audience EKS puts in projected service account tokens meant for STS. */
const STS_AUDIENCE = 'sts.amazonaws.com';

/** The annotation the EKS pod identity webhook reads to inject a role into a pod's service account. */
export const ROLE_ARN_ANNOTATION = 'eks.amazonaws.com/role-arn';

/**
 * A DNS-1123 subdomain: what Kubernetes accepts as a service account name.
 * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-subdomain-names
 */
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_1123_SUBDOMAIN_MAX_LENGTH = 253;

/**
 * Defines where the service account tokens that a {@link ServiceAccountRole} trusts come from: a cluster's IAM
 * OIDC provider, as an ARN and the issuer (the provider URL without `https://`).
 *
 * @see https://docs.aws.amazon.com/eks/latest/userguide/enable-iam-roles-for-service-accounts.html
 */
export class ServiceAccountIssuer {
  /**
   * The OIDC provider of an `aws-eks-v2` cluster, new or imported with `openIdConnectProvider`. With the
   * `@aws-cdk/aws-eks:useNativeOidcProvider` flag a new cluster's provider is the native `AWS::IAM::OIDCProvider`.
   */
  public static fromCluster(cluster: eks.ICluster): ServiceAccountIssuer {
    return new ServiceAccountIssuer(() => {
      try {
        return cluster.openIdConnectProvider;
      } catch {
        return throwInvalid(cluster, 'openIdConnectProvider', undefined, 'a cluster with an IAM OIDC provider (import it with `openIdConnectProvider`, or use ServiceAccountIssuer.fromProviderArn)');
      }
    });
  }

  /**
   * An IAM OIDC provider, e.g. `iam.OidcProviderNative.fromOidcProviderArn(...)` or a cluster's provider.
   */
  public static fromProvider(provider: iam.IOpenIdConnectProvider): ServiceAccountIssuer {
    return new ServiceAccountIssuer(() => provider);
  }

  /**
   * An IAM OIDC provider by ARN and issuer.
   *
   * @param providerArn `arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>`
   * @param issuer the cluster's issuer URL (`https://oidc.eks.<region>.amazonaws.com/id/<id>`), with or without `https://`
   */
  public static fromProviderArn(providerArn: string, issuer: string): ServiceAccountIssuer {
    const host = Token.isUnresolved(issuer) ? issuer : issuer.replace(/^https:\/\//, '');
    return new ServiceAccountIssuer(() => ({ openIdConnectProviderArn: providerArn, openIdConnectProviderIssuer: host }));
  }

  private constructor(private readonly resolveProvider: () => Pick<iam.IOpenIdConnectProvider, 'openIdConnectProviderArn' | 'openIdConnectProviderIssuer'>) {}

  /** The provider ARN and issuer host; resolved on first use so that an imported cluster fails with its path. */
  public bind(_scope: IConstruct): ServiceAccountIssuerConfig {
    const provider = this.resolveProvider();
    return { providerArn: provider.openIdConnectProviderArn, issuer: provider.openIdConnectProviderIssuer };
  }
}

/**
 * Defines what {@link ServiceAccountIssuer.bind} returns.
 */
export interface ServiceAccountIssuerConfig {
  /** The IAM OIDC provider ARN. */
  readonly providerArn: string;
  /** The issuer, without `https://`: the prefix of the trust policy's condition keys. */
  readonly issuer: string;
}

/**
 * Properties of a {@link ServiceAccountRole}.
 */
export interface ServiceAccountRoleProps {
  /** Whose service account tokens the role trusts. */
  readonly issuer: ServiceAccountIssuer;
  /** The namespace of the service account, a DNS-1123 label. */
  readonly namespace: string;
  /** The service account name, a DNS-1123 subdomain. */
  readonly serviceAccountName: string;
  /**
   * What the role is for.
   * @default - `IRSA role of <namespace>/<name>`
   */
  readonly description?: string;
  /**
   * The longest session the role gives.
   * @default Duration.hours(1)
   */
  readonly maxSessionDuration?: Duration;
}

/**
 * Defines an IAM role for exactly one Kubernetes service account (IRSA), without creating the service account.
 *
 * aws-cdk's `ServiceAccount` always writes the `ServiceAccount` object too, which collides with Helm charts that
 * create their own (Gloo, Istio, most operators). This construct makes only the role: its trust policy lets
 * `sts:AssumeRoleWithWebIdentity` through when the token's `<issuer>:sub` is
 * `system:serviceaccount:<namespace>:<name>` and its `<issuer>:aud` is `sts.amazonaws.com` (both `StringEquals`,
 * so no other service account and no token minted for another audience gets in). Put {@link annotations} on the
 * chart's service account.
 *
 * @see https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
 * @see https://github.com/aws/aws-cdk/issues/23370
 */
export class ServiceAccountRole extends Construct implements iam.IGrantable {
  /** The role. */
  public readonly role: iam.Role;
  /** The role ARN, for the `eks.amazonaws.com/role-arn` annotation. */
  public readonly roleArn: string;
  /** The namespace of the service account. */
  public readonly namespace: string;
  /** The service account name. */
  public readonly serviceAccountName: string;
  /** The role, as the principal that grants go to. */
  public readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: ServiceAccountRoleProps) {
    super(scope, id);
    const { namespace, serviceAccountName } = props;
    if (typeof namespace !== 'string' || (!Token.isUnresolved(namespace) && (namespace.length > DNS_1123_LABEL_MAX_LENGTH || !DNS_1123_LABEL.test(namespace)))) {
      throwInvalid(this, 'namespace', namespace, `a Kubernetes namespace: a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${DNS_1123_LABEL_MAX_LENGTH} characters)`);
    }
    if (typeof serviceAccountName !== 'string' || (!Token.isUnresolved(serviceAccountName) && (serviceAccountName.length > DNS_1123_SUBDOMAIN_MAX_LENGTH || !DNS_1123_SUBDOMAIN.test(serviceAccountName)))) {
      throwInvalid(this, 'serviceAccountName', serviceAccountName, `a Kubernetes service account name: a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most ${DNS_1123_SUBDOMAIN_MAX_LENGTH} characters)`);
    }
    this.namespace = namespace;
    this.serviceAccountName = serviceAccountName;

    const { providerArn, issuer } = props.issuer.bind(this);
    const value = {
      [`${issuer}:sub`]: `system:serviceaccount:${namespace}:${serviceAccountName}`,
      [`${issuer}:aud`]: STS_AUDIENCE,
    };
    // For a provider made in this app the issuer, part of the keys, is a token: CloudFormation can't resolve
    // object keys, so CfnJson renders them at deploy time. A literal issuer needs no custom resource.
    const conditions = Token.isUnresolved(issuer) ? new CfnJson(this, 'TrustConditions', { value }) : value;
    if (Token.isUnresolved(issuer)) {
      const provider = Stack.of(this).node.tryFindChild('AWSCDKCfnUtilsProviderCustomResourceProvider');
      if (provider) {
        Acknowledgements.guard(provider, 'lambda_inside_vpc_check', "CT.LAMBDA.PR.3: CDK's CfnJson provider runs only at deploy time and makes no network call: it returns the JSON it is given (the trust policy's condition keys).");
      }
    }
    this.role = new iam.Role(this, 'Resource', {
      assumedBy: new iam.WebIdentityPrincipal(providerArn, { StringEquals: conditions }),
      description: props.description ?? `IRSA role of ${namespace}/${serviceAccountName}`,
      maxSessionDuration: props.maxSessionDuration ?? Duration.hours(1),
    });
    this.roleArn = this.role.roleArn;
    this.grantPrincipal = this.role;
  }

  /**
   * Returns the annotation that binds the service account to this role: `{ 'eks.amazonaws.com/role-arn': <arn> }`.
   */
  public annotations(): { [key: string]: string } {
    return { [ROLE_ARN_ANNOTATION]: this.roleArn };
  }

  /**
   * Adds a statement to the role's policy.
   */
  public addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    return this.role.addToPrincipalPolicy(statement);
  }
}
