import { Annotations, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct } from 'constructs';
import { describeValue, throwInvalid } from '../../core/errors';
import { compare, DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../../core/names';
import { newVpcFunctionRole } from '../../core/internal';
import { Acknowledgements } from '../../core/validation';
import { type IMesh, type ResolvedService, ServiceProtocol } from '../../mesh';
import extensionEnv from '../extension/internal/config/env.json';
import { type MeshFunctionOptions, type MeshUpstream, type ProvisionedConcurrency } from '../types';

/**
 * The variables MeshFunction sets: the extension's, by the names in its internal/config/env.json (the file its Go
 * code embeds, so both sides read one source), and one for the code.
 */
export const ENV = {
  IDENTITY_PARAMETER: extensionEnv.identityParameter,
  UPSTREAMS: extensionEnv.upstreams,
  GATEWAY: extensionEnv.gateway,
  DATACENTER: extensionEnv.datacenter,
  NAMESPACE: extensionEnv.namespace,
  /** For the code: the identity it runs as. */
  IDENTITY: 'MESH_IDENTITY',
} as const;

/**
 * Names Lambda sets or reserves, and the prefixes of the extension's and the mesh's own variables.
 * @see https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
 */
const RESERVED_NAMES = new Set(['_HANDLER', '_X_AMZN_TRACE_ID', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR', ENV.IDENTITY]);
const RESERVED_PREFIXES = ['AWS_', 'LAMBDA_MESH_', 'MESH_UPSTREAM_'];
const ENV_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Lambda's limit on all environment variables of a function together. */
const ENV_LIMIT_BYTES = 4096;
/** What an unresolved token (the gateway's DNS name) is counted as when estimating the size. */
const TOKEN_ESTIMATE = 128;

/** The alias that carries provisioned concurrency. */
export const LIVE_ALIAS = 'live';

/** Everything the function constructs pass to Lambda, worked out from the mesh options. */
export interface MeshSettings {
  readonly identity: string;
  readonly upstreams: MeshUpstream[];
  readonly environment: Record<string, string>;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly networkPolicy: iam.Policy;
  readonly functionProps: {
    readonly role: iam.IRole;
    readonly logGroup: logs.ILogGroup;
    readonly memorySize: number;
    readonly timeout: Duration;
    readonly architecture: lambda.Architecture;
    readonly reservedConcurrentExecutions?: number;
    readonly environment: Record<string, string>;
    readonly description: string;
    readonly functionName?: string;
    readonly vpc: ec2.IVpc;
    readonly vpcSubnets: ec2.SubnetSelection;
    readonly securityGroups: ec2.ISecurityGroup[];
  };
}

/**
 * Checks the options of a mesh function, claims its identity through the mesh (which declares the function version
 * when the model lacks it), resolves its upstreams, and creates its role and log group. The caller creates the Lambda
 * function from `functionProps` and then calls {@link finishMeshFunction}.
 */
export function prepareMeshFunction(scope: Construct, o: MeshFunctionOptions): MeshSettings {
  for (const [field, value] of [['mesh', o.mesh], ['network', o.network], ['gateway', o.gateway], ['identities', o.identities]] as const) {
    if (!value) {
      throwInvalid(scope, field, value, `the ${field} the function joins`);
    }
  }
  const { mesh } = o;
  if (o.identities.mesh !== mesh) {
    throwInvalid(scope, 'identities', o.identities.node.path, `the identity registrar of mesh '${mesh.meshName}' at ${mesh.node.path} (this one registers mesh '${o.identities.mesh.meshName}' at ${o.identities.mesh.node.path}, so no bundle would be written for this identity)`);
  }
  const identity = claimIdentity(scope, mesh, o.service, o.version);
  const upstreams = resolveUpstreams(scope, mesh, o.service, identity, o.upstreams);

  if (o.functionName !== undefined && !Token.isUnresolved(o.functionName) && !/^[A-Za-z0-9_-]{1,64}$/.test(o.functionName)) {
    throwInvalid(scope, 'functionName', o.functionName, "1 to 64 letters, digits, '-' and '_' (Lambda's function name)");
  }
  const memorySize = o.memorySize ?? 1024;
  if (!Token.isUnresolved(memorySize) && (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10240)) {
    throwInvalid(scope, 'memorySize', memorySize, 'a whole number of MB from 128 to 10240');
  }
  const timeout = o.timeout ?? Duration.seconds(30);
  if (!Token.isUnresolved(timeout.toSeconds({ integral: false })) && (timeout.toMilliseconds() < 1000 || timeout.toSeconds({ integral: false }) > 900 || !Number.isInteger(timeout.toSeconds({ integral: false })))) {
    throwInvalid(scope, 'timeout', timeout.toHumanString(), 'a whole number of seconds from 1 second to 15 minutes');
  }
  const architecture = o.architecture ?? lambda.Architecture.ARM_64;
  if (architecture.name !== lambda.Architecture.ARM_64.name && architecture.name !== lambda.Architecture.X86_64.name) {
    throwInvalid(scope, 'architecture', architecture.name, 'lambda.Architecture.ARM_64 or lambda.Architecture.X86_64');
  }
  const reserved = o.reservedConcurrentExecutions;
  if (reserved !== undefined && !Token.isUnresolved(reserved) && (!Number.isInteger(reserved) || reserved < 1)) {
    throwInvalid(scope, 'reservedConcurrentExecutions', reserved, 'a whole number of at least 1 (0 would stop every invocation; leave it out for no reservation)');
  }
  checkProvisioned(scope, o.provisionedConcurrency, reserved);

  const environment = meshEnvironment(scope, o, identity, upstreams);

  const logKey = o.logKey ?? o.identities.key;
  const { logGroup, role, networkPolicy } = newVpcFunctionRole(scope, {
    ids: { logs: 'Logs', role: 'ServiceRole', networkPolicy: 'NetworkPolicy' },
    description: `lambda-mesh function ${identity}: its own logs, its own identity bundle`,
    logKey,
    logRetention: o.logRetention ?? logs.RetentionDays.ONE_YEAR,
    removalPolicy: o.removalPolicy ?? RemovalPolicy.RETAIN,
  });
  if (Stack.of(logKey) !== Stack.of(scope)) {
    Acknowledgements.guard(logGroup, 'cloudwatch_log_group_encrypted_check', `CT.CLOUDWATCH.PR.3: the log group is encrypted with the KMS key ${logKey.node.path} (by default the mesh key, which lets CloudWatch Logs use it); its ARN is a cross-stack reference, which the rule cannot resolve.`);
  }
  o.identities.grantReadIdentity(role, identity);

  // The shared security group's only egress: the gateway port and the endpoints. The rules are made from the
  // gateway's and the network's side, exactly as MeshGateway and MeshNetwork make them, so they land in those
  // constructs' stacks (no reference back to this one) and are the same rules (same ids), not duplicates.
  const sg = o.network.functionSecurityGroup;
  o.gateway.connections.allowDefaultPortFrom(sg, 'mesh functions to the mesh gateway');
  o.network.connections.allowDefaultPortFrom(sg, 'mesh functions to the VPC endpoints');

  return {
    identity,
    upstreams,
    environment,
    role,
    logGroup,
    networkPolicy,
    functionProps: {
      role,
      logGroup,
      memorySize,
      timeout,
      architecture,
      ...(reserved !== undefined ? { reservedConcurrentExecutions: reserved } : {}),
      environment,
      description: o.description ?? `lambda-mesh function ${identity} (mesh ${mesh.meshName})`,
      ...(o.functionName !== undefined ? { functionName: o.functionName } : {}),
      vpc: o.network.vpc,
      vpcSubnets: o.network.functionSubnets,
      securityGroups: [sg],
    },
  };
}

/**
 * Adds what needs the function: the alias with provisioned concurrency, the ordering of its policies, the
 * acknowledgements, and the synth-time check that the model still gives the identity these upstreams.
 */
export function finishMeshFunction(scope: Construct, fn: lambda.Function, settings: MeshSettings, o: MeshFunctionOptions): lambda.Alias | undefined {
  // Lambda checks the role's ENI permissions when the function is created.
  fn.node.addDependency(settings.networkPolicy);
  Acknowledgements.guard(fn, 'lambda_inside_vpc_check', 'CT.LAMBDA.PR.3: the function runs in the mesh network\'s function subnets with its shared security group; the subnet IDs come from the network stack as cross-stack references, which the rule cannot resolve.');
  const explicit = o.upstreams !== undefined;
  scope.node.addValidation({
    validate: () => {
      const now = o.mesh.upstreamsOf(settings.identity).map((s) => s.name);
      const have = settings.upstreams.map((u) => u.service);
      const lost = have.filter((s) => !now.includes(s));
      if (lost.length > 0) {
        return [`${scope.node.path}: upstreams: given ${describeValue(lost)}, expected services that ${settings.identity} may call; the mesh model no longer allows them (it allows: ${now.join(', ') || '(none)'})`];
      }
      const gained = now.filter((s) => !have.includes(s));
      if (!explicit && gained.length > 0) {
        return [`${scope.node.path}: upstreams: given (defaulted at construction to ${have.join(', ')}), expected every service ${settings.identity} may call, but rules added after the function also allow ${gained.join(', ')}: declare the rules before the function, or list upstreams`];
      }
      return [];
    },
  });

  const p = o.provisionedConcurrency;
  if (p === undefined) {
    return undefined;
  }
  const alias = new lambda.Alias(scope, 'LiveAlias', {
    aliasName: LIVE_ALIAS,
    version: fn.currentVersion,
    provisionedConcurrentExecutions: p.minCapacity,
    description: `Provisioned concurrency of ${settings.identity}`,
  });
  alias.addAutoScaling({ minCapacity: p.minCapacity, maxCapacity: p.maxCapacity }).scaleOnUtilization({ utilizationTarget: p.utilizationTarget ?? 0.7 });
  return alias;
}

/**
 * Validates `service` and `version` and claims the identity with `IMesh.claimIdentity`, which declares the version
 * when the model lacks it. The checks come first so that a bad value is reported at this construct and prop.
 */
function claimIdentity(scope: Construct, mesh: IMesh, service: string, version: string): string {
  for (const [field, value] of [['service', service], ['version', version]] as const) {
    if (typeof value !== 'string' || Token.isUnresolved(value) || !DNS_1123_LABEL.test(value)) {
      throwInvalid(scope, field, value, `a DNS-1123 label (lower-case letters, digits and '-'), e.g. ${field === 'service' ? "'model-a'" : "'v1'"}; tokens are not accepted, identities are fixed at synth`);
    }
  }
  const identity = `${service}-${version}`;
  if (identity.length > DNS_1123_LABEL_MAX_LENGTH) {
    throwInvalid(scope, 'version', version, `a service and version whose identity '${identity}' (${identity.length} characters) is at most ${DNS_1123_LABEL_MAX_LENGTH} characters`);
  }
  if (mesh.tryFindService(service)) {
    throwInvalid(scope, 'service', service, `the name of a function of mesh '${mesh.meshName}', not one of its backend services (a Lambda function gets its own identity, <function>-<version>)`);
  }
  const previous = mesh.identityClaimant(identity);
  if (previous !== undefined) {
    throwInvalid(scope, 'version', version, `an identity no other mesh function runs as ('${identity}' is already the identity of ${previous}; add a version instead)`);
  }
  return mesh.claimIdentity(service, version, scope.node.path).identityName;
}

function resolveUpstreams(scope: Construct, mesh: IMesh, service: string, identity: string, requested: string[] | undefined): MeshUpstream[] {
  const allowed = mesh.upstreamsOf(identity);
  const allowedList = allowed.map((s) => s.name).join(', ') || '(none)';
  let services: ResolvedService[];
  if (requested === undefined) {
    if (allowed.length === 0) {
      throwInvalid(scope, 'upstreams', '(every service the model allows, which is none)', `at least one service that ${identity} may call: add a rule first, e.g. mesh.service('feature-store').allowFrom(mesh.function('${service}')); the extension needs an upstream to proxy`);
    }
    services = allowed;
  } else {
    if (!Array.isArray(requested) || requested.length === 0) {
      throwInvalid(scope, 'upstreams', requested, `a non-empty list of services that ${identity} may call (${allowedList}), or leave it out for all of them`);
    }
    const seen = new Set<string>();
    services = requested.map((name, i) => {
      const field = `upstreams[${i}]`;
      if (seen.has(name)) {
        throwInvalid(scope, field, name, 'each service once');
      }
      seen.add(name);
      const known = typeof name === 'string' ? mesh.tryFindService(name) : undefined;
      if (!known) {
        const services = mesh.graph().services.map((s) => s.name).join(', ') || '(none)';
        throwInvalid(scope, field, name, `a service of mesh '${mesh.meshName}': ${services}`);
      }
      const found = allowed.find((s) => s.name === name);
      if (!found) {
        throwInvalid(scope, field, name, `a service that ${identity} may call (${allowedList}): the mesh model has no rule that allows ${identity} -> ${name}; add one, e.g. mesh.service('${name}').allowFrom(mesh.function('${service}'))`);
      }
      return found;
    }).sort((a, b) => compare(a.name, b.name));
  }
  return services.map((s) => {
    const scheme = s.protocol === ServiceProtocol.TCP ? 'tcp' : 'http';
    return {
      service: s.name,
      localPort: s.localPort,
      environmentVariable: `MESH_UPSTREAM_${s.name.toUpperCase().replace(/-/g, '_')}_URL`,
      url: `${scheme}://127.0.0.1:${s.localPort}`,
    };
  });
}

function meshEnvironment(scope: Construct, o: MeshFunctionOptions, identity: string, upstreams: MeshUpstream[]): Record<string, string> {
  const user = o.environment ?? {};
  for (const name of Object.keys(user)) {
    if (!ENV_NAME.test(name)) {
      throwInvalid(scope, `environment.${name}`, name, 'a variable name of letters, digits and "_", starting with a letter');
    }
    if (RESERVED_NAMES.has(name) || RESERVED_PREFIXES.some((p) => name.startsWith(p))) {
      throwInvalid(scope, `environment.${name}`, name, `a name that neither Lambda nor lambda-mesh sets (not ${[...RESERVED_NAMES].join(', ')} and no ${RESERVED_PREFIXES.join('*, ')}*)`);
    }
  }
  const env: Record<string, string> = {
    ...user,
    [ENV.IDENTITY_PARAMETER]: o.identities.parameterName(identity),
    [ENV.UPSTREAMS]: JSON.stringify(upstreams.map((u) => ({ service: u.service, localPort: u.localPort }))),
    [ENV.GATEWAY]: o.gateway.endpoint,
    [ENV.DATACENTER]: o.mesh.datacenter,
    [ENV.NAMESPACE]: o.mesh.namespace,
    [ENV.IDENTITY]: identity,
    ...Object.fromEntries(upstreams.map((u) => [u.environmentVariable, u.url])),
  };
  const size = Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + (Token.isUnresolved(v) ? TOKEN_ESTIMATE : Buffer.byteLength(v)), 0);
  if (size > ENV_LIMIT_BYTES) {
    throwInvalid(scope, 'environment', `${size} bytes of environment variables (with the mesh's own; tokens counted as ${TOKEN_ESTIMATE})`, `at most ${ENV_LIMIT_BYTES} bytes, Lambda's limit: fewer or shorter variables, or fewer upstreams`);
  }
  return env;
}

function checkProvisioned(scope: Construct, p: ProvisionedConcurrency | undefined, reserved: number | undefined): void {
  if (p === undefined) {
    return;
  }
  const whole = (field: string, v: number, min: number, expected: string): void => {
    if (!Token.isUnresolved(v) && (!Number.isInteger(v) || v < min)) {
      throwInvalid(scope, `provisionedConcurrency.${field}`, v, expected);
    }
  };
  whole('minCapacity', p.minCapacity, 1, 'a whole number of at least 1');
  whole('maxCapacity', p.maxCapacity, 1, 'a whole number of at least 1');
  if (p.maxCapacity < p.minCapacity) {
    throwInvalid(scope, 'provisionedConcurrency.maxCapacity', p.maxCapacity, `at least minCapacity (${p.minCapacity})`);
  }
  const target = p.utilizationTarget ?? 0.7;
  if (!Token.isUnresolved(target) && !(target >= 0.1 && target <= 0.9)) {
    throwInvalid(scope, 'provisionedConcurrency.utilizationTarget', target, 'a share from 0.1 to 0.9 (Application Auto Scaling\'s range for LambdaProvisionedConcurrencyUtilization)');
  }
  if (reserved !== undefined && !Token.isUnresolved(reserved) && p.maxCapacity > reserved) {
    throwInvalid(scope, 'provisionedConcurrency.maxCapacity', p.maxCapacity, `at most reservedConcurrentExecutions (${reserved}): Lambda cannot provision more environments than the function may run`);
  }
}

/** Warns once per construct, with an id users can acknowledge. */
export function warn(scope: Construct, id: string, message: string): void {
  Annotations.of(scope).addWarningV2(`lambda-mesh:function:${id}`, message);
}
