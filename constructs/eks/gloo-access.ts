import { Annotations, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { Acknowledgements } from '../core/validation';
import { type GlooLambdaFunction } from './gloo-function';
import { GlooUpstreamRole } from './gloo-routes';
import { DISCOVERY_SERVICE_ACCOUNT, GLOO_NAMESPACE, PROXY_SERVICE_ACCOUNT } from './private/gloo';
import { type ServiceAccountIssuer, ServiceAccountRole } from './service-account-role';

/**
 * Properties of {@link GlooLambdaAccess}.
 */
export interface GlooLambdaAccessProps {
  /** The cluster's OIDC provider, whose service account tokens the roles trust. */
  readonly issuer: ServiceAccountIssuer;
  /**
   * The functions Gloo may invoke; add more with `addFunction`.
   * @default - none yet
   */
  readonly functions?: GlooLambdaFunction[];
  /**
   * The namespace Gloo is installed into.
   * @default 'gloo-system'
   */
  readonly namespace?: string;
  /**
   * Turn on Gloo's function discovery and give its service account a role that may list functions. Discovery
   * rewrites the `lambdaFunctions` of the AWS Upstreams it scans, and {@link GlooLambdaRoutes} lists them
   * explicitly, so it is off by default (as in Gloo since 1.20); turning it on warns.
   * @default false
   */
  readonly discovery?: boolean;
}

/**
 * Defines the Helm values of the Gloo Edge chart that {@link GlooLambdaAccess} sets.
 *
 * @see https://docs.solo.io/gloo-edge/latest/reference/helm_chart_values/open_source_helm_chart_values/
 */
export interface GlooHelmValues {
  /** `settings`. */
  readonly settings: GlooSettingsValues;
  /** `gateway`. */
  readonly gateway: GlooGatewayValues;
  /** `discovery`. */
  readonly discovery: GlooDiscoveryValues;
}

/** Defines Gloo's `settings` values. */
export interface GlooSettingsValues {
  /** `settings.aws`. */
  readonly aws: GlooAwsSettingsValues;
}

/** Defines Gloo's `settings.aws` values. */
export interface GlooAwsSettingsValues {
  /** Envoy signs Lambda requests with the credentials of the pod's service account (IRSA). */
  readonly enableServiceAccountCredentials: boolean;
  /** The region of the STS endpoint Envoy exchanges the service account token at (the regional endpoint). */
  readonly stsCredentialsRegion: string;
}

/** Defines Gloo's `gateway` values. */
export interface GlooGatewayValues {
  /** `gateway.proxyServiceAccount`. */
  readonly proxyServiceAccount: GlooServiceAccountValues;
}

/** Defines the values of a service account of the Gloo chart. */
export interface GlooServiceAccountValues {
  /** Annotations added to the service account the chart creates. */
  readonly extraAnnotations: { [key: string]: string };
}

/** Defines Gloo's `discovery` values. */
export interface GlooDiscoveryValues {
  /** Whether the discovery deployment runs. */
  readonly enabled: boolean;
  /**
   * `discovery.serviceAccount`.
   * @default - not set (discovery is off)
   */
  readonly serviceAccount?: GlooServiceAccountValues;
}

/**
 * Defines the IAM roles of Gloo Edge's service accounts for invoking the mesh's Lambda functions, and the Helm
 * values that bind them.
 *
 * One role per service account, each trusting exactly its own `system:serviceaccount:gloo-system:<name>` subject
 * for the `sts.amazonaws.com` audience:
 * - `gateway-proxy` (Envoy) may `lambda:InvokeFunction` the listed functions at their qualifier, nothing else;
 * - `discovery`, only when discovery is on, may `lambda:GetFunction` the same functions and `lambda:ListFunctions`.
 *
 * The Gloo chart creates the service accounts itself; {@link helmValues} annotates them with the roles.
 *
 * @see https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/aws_lambda/eks-service-accounts/
 */
export class GlooLambdaAccess extends Construct {
  /** The role of the gateway-proxy service account. */
  public readonly proxyRole: ServiceAccountRole;
  /**
   * The role of the discovery service account.
   * @default - none: discovery is off
   */
  public readonly discoveryRole?: ServiceAccountRole;
  /** The namespace Gloo is installed into. */
  public readonly namespace: string;
  /** Whether function discovery is on. */
  public readonly discovery: boolean;

  private readonly functions: GlooLambdaFunction[] = [];

  constructor(scope: Construct, id: string, props: GlooLambdaAccessProps) {
    super(scope, id);
    this.namespace = props.namespace ?? GLOO_NAMESPACE;
    this.discovery = props.discovery ?? false;
    this.proxyRole = new ServiceAccountRole(this, 'ProxyRole', {
      issuer: props.issuer,
      namespace: this.namespace,
      serviceAccountName: PROXY_SERVICE_ACCOUNT,
      description: `Gloo gateway-proxy (${this.namespace}): invokes the mesh's Lambda functions`,
    });
    if (this.discovery) {
      this.discoveryRole = new ServiceAccountRole(this, 'DiscoveryRole', {
        issuer: props.issuer,
        namespace: this.namespace,
        serviceAccountName: DISCOVERY_SERVICE_ACCOUNT,
        description: `Gloo discovery (${this.namespace}): reads the mesh's Lambda functions`,
      });
      // ListFunctions has no resource-level permissions: AWS requires "*" for it.
      this.discoveryRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:ListFunctions'], resources: ['*'] }));
      Acknowledgements.awsSolutions(this.discoveryRole, 'IAM5[Resource::*]', 'lambda:ListFunctions supports no resource-level permissions, so AWS requires "*"; it lists function configurations only (GetFunction and InvokeFunction stay scoped to the listed functions).');
      Annotations.of(this).addWarningV2('lambda-mesh:eks:glooDiscovery', 'Gloo function discovery is on: it rewrites the lambdaFunctions of every AWS Upstream it scans, replacing hand-written ones (the Upstream of GlooLambdaRoutes opts out with the label discovery.solo.io/function_discovery=disabled). Discovery is off by default since Gloo 1.20.');
    }
    for (const fn of props.functions ?? []) {
      this.addFunction(fn);
    }
    this.node.addValidation({
      validate: () => (this.functions.length === 0 ? [`${this.node.path}: functions: given none, expected at least one function for Gloo to invoke (GlooLambdaAccess.addFunction)`] : []),
    });
  }

  /**
   * Lets Gloo invoke `fn` at its qualifier (and, with discovery, read it).
   */
  public addFunction(fn: GlooLambdaFunction): void {
    this.functions.push(fn);
    const arns = fn.invocationArns(this);
    this.proxyRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: arns }));
    this.discoveryRole?.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:GetFunction'], resources: arns }));
  }

  /**
   * Lets the gateway-proxy role chain into `role` (`sts:AssumeRole` on it) and adds the proxy role to `role`'s
   * trust policy; returns the Upstream role for {@link GlooLambdaRoutes}. `role` must be one whose trust policy this
   * app defines (an `iam.Role`).
   */
  public chainTo(role: iam.IRole): GlooUpstreamRole {
    if (!(role instanceof iam.Role)) {
      throwInvalid(this, 'chainTo(role)', role.roleArn, 'a role whose trust policy this app defines (iam.Role), so that it can trust the gateway-proxy role; for a role defined elsewhere, add that trust there and use GlooUpstreamRole.webIdentity or chain from a role you own');
    }
    role.assumeRolePolicy!.addStatements(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], principals: [new iam.ArnPrincipal(this.proxyRole.roleArn)] }));
    this.proxyRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [role.roleArn] }));
    return GlooUpstreamRole._chained(role.roleArn);
  }

  /**
   * Returns the Helm values that turn on service account credentials (with the regional STS endpoint of this
   * stack's region), annotate the chart's service accounts with their roles and set discovery on or off.
   */
  public helmValues(): GlooHelmValues {
    return {
      settings: { aws: { enableServiceAccountCredentials: true, stsCredentialsRegion: Stack.of(this).region } },
      gateway: { proxyServiceAccount: { extraAnnotations: this.proxyRole.annotations() } },
      discovery: {
        enabled: this.discovery,
        ...(this.discoveryRole ? { serviceAccount: { extraAnnotations: this.discoveryRole.annotations() } } : {}),
      },
    };
  }
}
