import { ArnFormat, CustomResource, Duration, Lazy, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct, type IConstruct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newAlarmTopic, newMeshKey, newVpcFunction } from '../core/internal';
import { Acknowledgements } from '../core/validation';
import { ConsulTokenRole, type IConsulCluster } from '../consul/types';
import { IdentityKind, type IMesh, type ResolvedIdentity } from '../mesh';
import { type IMeshNetwork } from '../network';
import { grantConsulAccess } from './private/consul-access';

/**
 * SSM's parameter name limits: 1011 characters including the ARN prefix, 15 levels.
 * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html#systemsmanager-PutParameter-request-Name
 */
const SSM_MAX_NAME_WITH_ARN = 1011;
const SSM_MAX_DEPTH = 15;
/** The longest ARN prefix a parameter can get: `arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter`. */
const SSM_ARN_PREFIX_MAX = 'arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter'.length;

/** The CloudWatch namespace of the identity certificates' metrics. */
const METRIC_NAMESPACE = 'LambdaMesh/Identities';

/** The props the steps share, with their defaults filled in. */
interface RegistrarSettings {
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /** How often the rotation runs; also the alarms' period, up to a day. */
  readonly checkInterval: Duration;
}

/**
 * An identity registrar: what mesh functions rely on to read their certificate bundle.
 */
export interface IIdentityRegistrar extends IConstruct {
  /** The mesh whose function versions get identities. */
  readonly mesh: IMesh;
  /** The key that encrypts the bundles. */
  readonly key: kms.IKey;
  /** The parameter path prefix of the bundles. */
  readonly parameterPrefix: string;
  /** The SSM parameter name of an identity's bundle. */
  parameterName(identity: string): string;
  /** Lets `grantee` read exactly one identity's bundle and decrypt it. */
  grantReadIdentity(grantee: iam.IGrantable, identity: string): iam.Grant;
}

/**
 * Properties of {@link IdentityRegistrar}.
 */
export interface IdentityRegistrarProps {
  /** The mesh whose function versions get identities. */
  readonly mesh: IMesh;
  /** The Consul servers (with the identity-registrar token). */
  readonly cluster: IConsulCluster;
  /** The network: the registrar and the rotation run in its function subnets. */
  readonly network: IMeshNetwork;
  /**
   * The SSM parameter path under which each identity's certificate bundle is written, as
   * `<prefix>/<partition>/<namespace>/<identity>`. It must start with `/`.
   * @default '/lambda-mesh/<meshName>'
   */
  readonly parameterPrefix?: string;
  /**
   * The KMS key that encrypts the bundles (SecureString) and the logs. Mesh functions decrypt with it.
   * @default - a new key
   */
  readonly key?: kms.IKey;
  /**
   * How often the rotation checks every identity's certificate (it reissues one with less than half its lifetime left).
   * @default Duration.hours(1)
   */
  readonly rotationCheckInterval?: Duration;
  /**
   * Alarm when an identity's certificate expires sooner than this. Consul renews a leaf at a random point between
   * 60% and 90% of its lifetime (72 hours by default), so a healthy certificate can get down to 10% (7.2 hours)
   * before the rotation sees the new one: keep the threshold below that.
   * @default Duration.hours(4)
   */
  readonly expiryAlarmThreshold?: Duration;
  /**
   * Where the alarms are sent.
   * @default - a new KMS-encrypted topic
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * How long the functions' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the key and logs when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Defines the identities of the mesh's function versions in Consul, and keeps their certificates fresh.
 *
 * At deploy time a custom resource registers every function version (`model-a-v1`, ...) as a service of an
 * external node in Consul's catalog, fetches the CA roots and a leaf certificate for it, and writes the bundle to
 * SSM Parameter Store as a SecureString in the format of HashiCorp's Lambda registrator
 * (`{"privateKeyPEM","certPEM","rootCertPEM","trustDomain","peers"}` at `<prefix>/<partition>/<namespace>/<identity>`),
 * where the function's extension reads it. Whenever the registrar runs (a deploy that changes the identities or
 * their settings), it checks every bundle, registered before or not, and rewrites those that differ; between
 * deploys a scheduled function checks every certificate, takes Consul's renewed one once it is past half its
 * lifetime, rewrites SSM, and publishes the time to the nearest expiry, with alarms. So no leaf certificate
 * expires because its function was registered earlier.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/lambda/registration/automate
 */
export class IdentityRegistrar extends Construct implements IIdentityRegistrar {
  /** The key that encrypts the bundles. */
  public readonly key: kms.IKey;
  /** The parameter path prefix of the bundles. */
  public readonly parameterPrefix: string;
  /** The scheduled rotation function. */
  public readonly rotationFunction: lambda.IFunction;
  /** In alarm when an identity certificate expires within the threshold. */
  public readonly expiryAlarm: cloudwatch.Alarm;
  /** In alarm when a rotation run fails for any identity. */
  public readonly rotationErrorsAlarm: cloudwatch.Alarm;
  /** In alarm when the rotation has not run for two check intervals. */
  public readonly rotationStoppedAlarm: cloudwatch.Alarm;
  /** Where the alarms are sent. */
  public readonly alarmTopic: sns.ITopic;

  /** The mesh whose function versions get identities. */
  public readonly mesh: IMesh;

  constructor(scope: Construct, id: string, props: IdentityRegistrarProps) {
    super(scope, id);
    this.mesh = props.mesh;
    this.parameterPrefix = props.parameterPrefix ?? `/lambda-mesh/${props.mesh.meshName}`;
    if (!Token.isUnresolved(this.parameterPrefix) && !/^(\/[A-Za-z0-9_.-]+)+$/.test(this.parameterPrefix)) {
      throwInvalid(this, 'parameterPrefix', this.parameterPrefix, "an SSM parameter path such as '/lambda-mesh/prod' "
        + "(starts with '/', letters, digits, '_', '.', '-', no trailing '/')");
    }
    const settings: RegistrarSettings = {
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      checkInterval: props.rotationCheckInterval ?? Duration.hours(1),
    };
    this.key = props.key ?? this.createKey(settings.removalPolicy);
    // SSM's limits, checked at synth for every identity (versions may be added after this construct).
    this.node.addValidation({ validate: () => this.checkParameterNames() });

    this.createRegistration(props, settings);
    this.rotationFunction = this.createRotation(props, settings);

    this.alarmTopic = props.alarmTopic
      ?? newAlarmTopic(this, 'Alarms', `Mesh ${props.mesh.meshName} identity alarms`, this.key);
    const alarms = this.createAlarms(props, settings, this.rotationFunction);
    this.expiryAlarm = alarms.expiry;
    this.rotationStoppedAlarm = alarms.rotationStopped;
    this.rotationErrorsAlarm = alarms.rotationErrors;
  }

  /** The mesh's function versions: the identities this registrar registers and rotates. */
  private functionVersions(): ResolvedIdentity[] {
    return this.mesh.graph().identities.filter((i) => i.kind === IdentityKind.FUNCTION_VERSION);
  }

  /** The new key of the bundles and logs, when none is given. */
  private createKey(removalPolicy: RemovalPolicy): kms.IKey {
    const key = newMeshKey(this, 'Key', `Encrypts the identity bundles and logs of mesh ${this.mesh.meshName}`,
      removalPolicy);
    allowCloudWatchLogs(key);
    return key;
  }

  /** SSM's limits on every identity's parameter name: its length with the longest ARN prefix, and its depth. */
  private checkParameterNames(): string[] {
    return this.functionVersions().flatMap((i) => {
      const name = this.parameterName(i.name);
      const problems: string[] = [];
      if (name.length + SSM_ARN_PREFIX_MAX > SSM_MAX_NAME_WITH_ARN) {
        problems.push(`${this.node.path}: parameterName(${i.name}): given ${JSON.stringify(name)} (${name.length} `
          + `characters), expected at most ${SSM_MAX_NAME_WITH_ARN - SSM_ARN_PREFIX_MAX} characters (SSM allows `
          + `${SSM_MAX_NAME_WITH_ARN} including the ARN prefix): shorten parameterPrefix or the identity`);
      }
      const depth = name.split('/').length - 1;
      if (depth > SSM_MAX_DEPTH) {
        problems.push(`${this.node.path}: parameterName(${i.name}): given ${JSON.stringify(name)} (${depth} levels), `
          + `expected at most ${SSM_MAX_DEPTH} levels: use a shorter parameterPrefix path`);
      }
      return problems;
    });
  }

  /** Lets `fn` use the bundles: `actions` on the parameters under the prefix, the key through SSM only. */
  private grantBundleAccess(fn: lambda.Function, actions: string[]): void {
    const stack = Stack.of(this);
    const parameters = stack.formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: `${this.parameterPrefix.slice(1)}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const policy = new iam.Policy(fn, 'BundlePolicy', {
      statements: [
        new iam.PolicyStatement({ actions, resources: [parameters] }),
        new iam.PolicyStatement({
          actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `ssm.${stack.region}.amazonaws.com` } },
        }),
      ],
    });
    fn.role!.attachInlinePolicy(policy);
    const findingArn = Acknowledgements.findingArn(stack, 'ssm', `parameter${this.parameterPrefix}/*`);
    Acknowledgements.awsSolutions(policy, `IAM5[Resource::${findingArn}]`, 'The bundles live under the mesh\'s '
      + 'parameter path, one per function version; versions come and go with deploys, so the path is the scope.');
  }

  /** Registration at deploy time: the registrar function and the custom resource that calls it. */
  private createRegistration(props: IdentityRegistrarProps, settings: RegistrarSettings): void {
    const { mesh } = props;
    const identities = Lazy.string({
      produce: () => JSON.stringify(this.functionVersions().map((i) => ({
        name: i.name,
        functionName: i.functionName,
        version: i.version,
      }))),
    });
    const registrar = newVpcFunction(this, 'Registrar', {
      handler: 'identity-registrar',
      network: props.network,
      purpose: `Registers the function identities of mesh ${mesh.meshName} in Consul`,
      logKey: this.key,
      logRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
      timeout: Duration.minutes(10),
    });
    grantConsulAccess(registrar.fn, registrar.securityGroup, props.cluster, ConsulTokenRole.IDENTITY_REGISTRAR);
    this.grantBundleAccess(registrar.fn, ['ssm:PutParameter', 'ssm:GetParameter', 'ssm:DeleteParameter']);
    const resource = new CustomResource(this, 'Resource', {
      serviceToken: registrar.fn.functionArn,
      resourceType: 'Custom::MeshIdentities',
      properties: {
        Identities: identities,
        ParameterPrefix: this.parameterPrefix,
        Partition: mesh.partition,
        Namespace: mesh.namespace,
        Datacenter: mesh.datacenter,
        KmsKeyId: this.key.keyArn,
        NodeName: `lambda-mesh-functions-${mesh.meshName}`,
      },
    });
    // Its first call needs its permissions (the bundle policy is a child of the function), its network path and
    // the servers: depend on all of them, not only on the function's ARN.
    resource.node.addDependency(registrar.fn, registrar.securityGroup, registrar.fn.role!, props.cluster);
  }

  /** Rotation on a schedule: the function that reissues certificates and publishes their expiry, and its rule. */
  private createRotation(props: IdentityRegistrarProps, settings: RegistrarSettings): lambda.Function {
    const { mesh } = props;
    const rotation = newVpcFunction(this, 'Rotation', {
      handler: 'certificate-rotation',
      network: props.network,
      purpose: `Reissues the identity certificates of mesh ${mesh.meshName} before half their lifetime`,
      logKey: this.key,
      logRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
      timeout: Duration.minutes(10),
      environment: {
        PARAMETER_PREFIX: this.parameterPrefix,
        PARTITION: mesh.partition,
        NAMESPACE: mesh.namespace,
        KMS_KEY_ID: this.key.keyArn,
        IDENTITIES: Lazy.string({ produce: () => JSON.stringify(this.functionVersions().map((i) => i.name)) }),
        METRIC_NAMESPACE,
        MESH_NAME: mesh.meshName,
      },
    });
    grantConsulAccess(rotation.fn, rotation.securityGroup, props.cluster, ConsulTokenRole.IDENTITY_REGISTRAR);
    this.grantBundleAccess(rotation.fn, ['ssm:PutParameter', 'ssm:GetParameter']);
    const metricsPolicy = new iam.Policy(rotation.fn, 'MetricsPolicy', {
      // PutMetricData has no resource-level permissions; the namespace condition scopes it.
      statements: [new iam.PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } },
      })],
    });
    rotation.fn.role!.attachInlinePolicy(metricsPolicy);
    Acknowledgements.awsSolutions(metricsPolicy, 'IAM5[Resource::*]', 'cloudwatch:PutMetricData supports no '
      + 'resource-level permissions; the namespace condition scopes it to LambdaMesh/Identities.');
    new events.Rule(this, 'RotationSchedule', {
      description: `Checks the identity certificates of mesh ${mesh.meshName}`,
      schedule: events.Schedule.rate(settings.checkInterval),
      targets: [new targets.LambdaFunction(rotation.fn, { retryAttempts: 2 })],
    });
    return rotation.fn;
  }

  /** The expiry, rotation-stopped and rotation-errors alarms, in alarm and back to OK on the alarm topic. */
  private createAlarms(
    props: IdentityRegistrarProps, settings: RegistrarSettings, rotation: lambda.IFunction,
  ): { expiry: cloudwatch.Alarm; rotationStopped: cloudwatch.Alarm; rotationErrors: cloudwatch.Alarm } {
    const { meshName } = props.mesh;
    const threshold = props.expiryAlarmThreshold ?? Duration.hours(4);
    // CloudWatch alarm periods stop at a day.
    const period = settings.checkInterval.toSeconds() > 86400 ? Duration.days(1) : settings.checkInterval;
    const expiry = new cloudwatch.Alarm(this, 'ExpiryAlarm', {
      alarmDescription: `Mesh ${meshName}: an identity certificate expires within ${threshold.toHumanString()}`,
      metric: new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: 'SecondsToExpiry',
        dimensionsMap: { MeshName: meshName },
        statistic: 'Minimum',
        period,
      }),
      threshold: threshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      // A mesh without function versions publishes nothing: that is fine. A rotation that stopped running is
      // caught by the invocations alarm below.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const rotationStopped = new cloudwatch.Alarm(this, 'RotationStoppedAlarm', {
      alarmDescription: `Mesh ${meshName}: the certificate rotation has not run for two check intervals`,
      metric: rotation.metricInvocations({ period, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    const rotationErrors = new cloudwatch.Alarm(this, 'RotationErrorsAlarm', {
      alarmDescription: `Mesh ${meshName}: the certificate rotation failed for at least one identity`,
      metric: rotation.metricErrors({ period, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [expiry, rotationErrors, rotationStopped]) {
      alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic));
      alarm.addOkAction(new cloudwatchActions.SnsAction(this.alarmTopic));
    }
    return { expiry, rotationStopped, rotationErrors };
  }

  /** The SSM parameter name of an identity's bundle: `<prefix>/<partition>/<namespace>/<identity>`. */
  public parameterName(identity: string): string {
    return `${this.parameterPrefix}/${this.mesh.partition}/${this.mesh.namespace}/${identity}`;
  }

  /**
   * Lets `grantee` (a mesh function's role) read exactly one identity's bundle and decrypt it, and nothing else.
   */
  public grantReadIdentity(grantee: iam.IGrantable, identity: string): iam.Grant {
    const stack = Stack.of(this);
    const arn = stack.formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: this.parameterName(identity).slice(1),
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['ssm:GetParameter'], resourceArns: [arn] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt'],
      resourceArns: [this.key.keyArn],
      conditions: {
        StringEquals: {
          'kms:ViaService': `ssm.${stack.region}.amazonaws.com`,
          'kms:EncryptionContext:PARAMETER_ARN': arn,
        },
      },
    });
    return grant;
  }
}
