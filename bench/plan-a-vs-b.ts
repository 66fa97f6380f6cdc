/**
 * Plan A versus plan B, counted from synthesized CloudFormation templates, not from formulas.
 *
 * - Plan A: what a least-privilege team writes by hand with aws-cdk-lib. One security group per model function
 *   version and one per service (no outbound by default), and per (version, service) pair an ingress rule on the
 *   service's group from the version's group plus the matching egress rule on the version's group.
 * - Plan B: lambda-mesh. The {@link MeshEnvironment} built from a config with the same functions, services and
 *   pairs (an L7 rule `GET /v1/*` per function and service), all of its stacks: network, control plane, mesh and
 *   one stack per model function.
 *
 * Both are synthesized into temporary directories; security groups and their rules are counted from the template
 * JSON of every stack: inline `SecurityGroupIngress`/`SecurityGroupEgress` entries plus
 * `AWS::EC2::SecurityGroupIngress`/`Egress` resources, attributed to the group they belong to (also across stacks).
 *
 * Run: npx tsx bench/plan-a-vs-b.ts            (prints the tables)
 *      npx tsx bench/plan-a-vs-b.ts --write    (also rewrites docs/plan-a-vs-b.md)
 *      add --with-validation to keep aws-cdk-lib's built-in CloudFormation validation on (minutes longer)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, CfnElement, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { type CloudAssembly } from 'aws-cdk-lib/cx-api';
import { type IConstruct } from 'constructs';
import { IdentityKind } from '../constructs/mesh';
import { type EnvironmentConfig, validateConfig } from '../lib/config';
import { MeshEnvironment } from '../lib/environment';
import { modelFunctionStackId } from '../lib/function-stack';

const REPO_ROOT = path.resolve(__dirname, '..');
const DOC_FILE = path.join(REPO_ROOT, 'docs', 'plan-a-vs-b.md');

/** CloudFormation's quota of resources per stack; aws-cdk-lib refuses to synthesize a stack with more. */
export const CFN_MAX_RESOURCES = 500;
/** CloudFormation's largest template body, uploaded through S3 (bytes); aws-cdk-lib warns above it. */
export const CFN_MAX_TEMPLATE_BYTES = 1_000_000;
/** The template size above which aws-cdk-lib's default rules (`CloudFormation-Validate::F1101`) fail synth. */
export const CDK_VALIDATE_MAX_TEMPLATE_BYTES = 10 * 1024 * 1024;
/** The default VPC quota of inbound, and separately outbound, rules per security group. */
export const SG_DEFAULT_RULES_QUOTA = 60;
/** Rules per security group times security groups per network interface may not exceed this. */
export const SG_RULES_CEILING = 1000;

/** One size of the comparison. */
export interface PlanSize {
  /** Model functions (N). */
  readonly models: number;
  /** Backend services (M). */
  readonly services: number;
  /** Versions per model (V); each is its own security group in plan A and its own identity in plan B. */
  readonly versions: number;
}

/** One synthesized stack template. */
export interface SynthesizedTemplate {
  /** The stack name. */
  readonly stackName: string;
  /** The parsed template. */
  readonly template: unknown;
  /** The template file's size as aws-cdk-lib wrote it, in bytes. */
  readonly bytes: number;
}

/** The rules of one security group, by direction. */
export interface GroupRules {
  /** Inbound rules. */
  inbound: number;
  /** Outbound rules, without CDK's "Disallow all traffic" placeholder. */
  outbound: number;
}

/** Security groups and their rules, counted over a set of templates. */
export interface SecurityGroupCounts {
  /** Stacks counted. */
  readonly stacks: number;
  /** Resources of every type, over all stacks. */
  readonly resources: number;
  /** Resources in the largest stack. */
  readonly maxResourcesInStack: number;
  /** Size of the largest template, in bytes. */
  readonly maxTemplateBytes: number;
  /** `AWS::EC2::SecurityGroup` resources. */
  readonly securityGroups: number;
  /** Inline `SecurityGroupIngress` entries of those groups. */
  readonly inlineIngress: number;
  /** Inline `SecurityGroupEgress` entries, without the placeholders. */
  readonly inlineEgress: number;
  /** `AWS::EC2::SecurityGroupIngress` resources. */
  readonly ingressResources: number;
  /** `AWS::EC2::SecurityGroupEgress` resources. */
  readonly egressResources: number;
  /**
   * CDK's inline "Disallow all traffic" egress entries (ICMP 252/86 to 255.255.255.255/32): what aws-cdk-lib
   * renders for a group with `allowAllOutbound: false` and no egress rule yet. They take a rule slot in AWS but
   * carry no policy, so they are not in the rule counts.
   */
  readonly noTrafficPlaceholders: number;
  /** Inbound rules: inline entries plus resources. */
  readonly ingress: number;
  /** Outbound rules: inline entries (without placeholders) plus resources. */
  readonly egress: number;
  /** `ingress + egress`. */
  readonly rules: number;
  /** The most inbound rules on one group. */
  readonly maxInboundPerGroup: number;
  /** The most outbound rules on one group. */
  readonly maxOutboundPerGroup: number;
  /** Rules per group, keyed `<stack name>/<logical id>` (or `external:<id>` for a group no template defines). */
  readonly perGroup: ReadonlyMap<string, GroupRules>;
}

type JsonRecord = Record<string, unknown>;

function isRecord(x: unknown): x is JsonRecord {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function recordAt(x: JsonRecord, key: string): JsonRecord {
  const v = x[key];
  return isRecord(v) ? v : {};
}

function arrayAt(x: JsonRecord, key: string): unknown[] {
  const v = x[key];
  return Array.isArray(v) ? v : [];
}

function isNoTrafficPlaceholder(rule: unknown): boolean {
  return isRecord(rule) && rule.CidrIp === '255.255.255.255/32' && rule.IpProtocol === 'icmp' && rule.FromPort === 252 && rule.ToPort === 86;
}

/**
 * Counts security groups and their rules in `templates`, and attributes each rule to its group: a group in the
 * same stack (`Fn::GetAtt`/`Ref`), or in another stack (`Fn::GetStackOutput`, `Fn::ImportValue`) through that
 * stack's outputs.
 */
export function countSecurityGroups(templates: readonly SynthesizedTemplate[]): SecurityGroupCounts {
  const byName = new Map(templates.map((t) => [t.stackName, isRecord(t.template) ? t.template : {}]));
  const exports = new Map<string, { stackName: string; value: unknown }>();
  for (const [stackName, template] of byName) {
    for (const output of Object.values(recordAt(template, 'Outputs'))) {
      if (isRecord(output) && isRecord(output.Export) && typeof output.Export.Name === 'string') {
        exports.set(output.Export.Name, { stackName, value: output.Value });
      }
    }
  }

  const groupKey = (stackName: string, ref: unknown, depth = 0): string => {
    if (isRecord(ref) && depth < 5) {
      const getAtt = ref['Fn::GetAtt'];
      if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') {
        return `${stackName}/${getAtt[0]}`;
      }
      if (typeof ref.Ref === 'string') {
        return `${stackName}/${ref.Ref}`;
      }
      const stackOutput = ref['Fn::GetStackOutput'];
      if (isRecord(stackOutput) && typeof stackOutput.StackName === 'string' && typeof stackOutput.OutputName === 'string') {
        const producer = byName.get(stackOutput.StackName);
        const output = producer ? recordAt(recordAt(producer, 'Outputs'), stackOutput.OutputName) : undefined;
        if (output && 'Value' in output) {
          return groupKey(stackOutput.StackName, output.Value, depth + 1);
        }
      }
      const imported = ref['Fn::ImportValue'];
      if (typeof imported === 'string' && exports.has(imported)) {
        const exported = exports.get(imported)!;
        return groupKey(exported.stackName, exported.value, depth + 1);
      }
    }
    return `external:${typeof ref === 'string' ? ref : JSON.stringify(ref)}`;
  };

  const perGroup = new Map<string, GroupRules>();
  const group = (key: string): GroupRules => {
    let g = perGroup.get(key);
    if (g === undefined) {
      g = { inbound: 0, outbound: 0 };
      perGroup.set(key, g);
    }
    return g;
  };

  let resources = 0;
  let maxResourcesInStack = 0;
  let securityGroups = 0;
  let inlineIngress = 0;
  let inlineEgress = 0;
  let ingressResources = 0;
  let egressResources = 0;
  let noTrafficPlaceholders = 0;
  for (const [stackName, template] of byName) {
    const stackResources = Object.entries(recordAt(template, 'Resources'));
    resources += stackResources.length;
    maxResourcesInStack = Math.max(maxResourcesInStack, stackResources.length);
    for (const [logicalId, resource] of stackResources) {
      if (!isRecord(resource)) {
        continue;
      }
      const props = recordAt(resource, 'Properties');
      switch (resource.Type) {
        case 'AWS::EC2::SecurityGroup': {
          securityGroups += 1;
          const g = group(`${stackName}/${logicalId}`);
          const ingress = arrayAt(props, 'SecurityGroupIngress').length;
          const egressEntries = arrayAt(props, 'SecurityGroupEgress');
          const placeholders = egressEntries.filter(isNoTrafficPlaceholder).length;
          inlineIngress += ingress;
          inlineEgress += egressEntries.length - placeholders;
          noTrafficPlaceholders += placeholders;
          g.inbound += ingress;
          g.outbound += egressEntries.length - placeholders;
          break;
        }
        case 'AWS::EC2::SecurityGroupIngress':
          ingressResources += 1;
          group(groupKey(stackName, props.GroupId)).inbound += 1;
          break;
        case 'AWS::EC2::SecurityGroupEgress':
          egressResources += 1;
          group(groupKey(stackName, props.GroupId)).outbound += 1;
          break;
        default:
          break;
      }
    }
  }
  const ingress = inlineIngress + ingressResources;
  const egress = inlineEgress + egressResources;
  const groups = [...perGroup.values()];
  return {
    stacks: byName.size,
    resources,
    maxResourcesInStack,
    maxTemplateBytes: Math.max(0, ...templates.map((t) => t.bytes)),
    securityGroups,
    inlineIngress,
    inlineEgress,
    ingressResources,
    egressResources,
    noTrafficPlaceholders,
    ingress,
    egress,
    rules: ingress + egress,
    maxInboundPerGroup: Math.max(0, ...groups.map((g) => g.inbound)),
    maxOutboundPerGroup: Math.max(0, ...groups.map((g) => g.outbound)),
    perGroup,
  };
}

/** Reads every stack template (also in nested stages) of a synthesized assembly. */
export function templatesOf(assembly: CloudAssembly): SynthesizedTemplate[] {
  return assembly.stacksRecursively.map((stack) => {
    const template: unknown = stack.template;
    return { stackName: stack.stackName, template, bytes: fs.statSync(path.join(assembly.directory, stack.templateFile)).size };
  });
}

/** The `context` of the repository's cdk.json: the feature flags `cdk synth` runs with. */
export function cdkJsonContext(): Record<string, unknown> {
  const file = path.join(REPO_ROOT, 'cdk.json');
  const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!isRecord(parsed) || !isRecord(parsed.context)) {
    throw new Error(`${file}: expected an object with a "context" object`);
  }
  return { ...parsed.context };
}

/** The key under which {@link countSecurityGroups} files the rules of a security group made in this app. */
export function groupKeyOf(group: ec2.ISecurityGroup): string {
  const resource: IConstruct | undefined = group.node.defaultChild;
  if (!resource || !CfnElement.isCfnElement(resource)) {
    throw new Error(`${group.node.path}: not a security group defined in this app`);
  }
  const stack = Stack.of(resource);
  return `${stack.stackName}/${stack.getLogicalId(resource)}`;
}

/** The name of model `i` (0-based): `model-0001`. */
export function modelName(i: number): string {
  return `model-${String(i + 1).padStart(4, '0')}`;
}

/** The name of service `i` (0-based): `svc-01`. */
export function serviceName(i: number): string {
  return `svc-${String(i + 1).padStart(2, '0')}`;
}

/** The versions of every model: `v1`, `v2`, ... */
export function versionNames(versions: number): string[] {
  return Array.from({ length: versions }, (_, i) => `v${i + 1}`);
}

/** The port of service `i` (0-based), in both plans. */
export function servicePort(i: number): number {
  return 8080 + i;
}

/** How to synthesize. */
export interface MeasureOptions {
  /**
   * Run aws-cdk-lib's built-in CloudFormation validation (the `CloudFormation-Validate` rules) inside `app.synth()`.
   * @default false - its time is not synthesis, and on large templates it takes minutes
   */
  readonly builtinValidation?: boolean;
}

/** What one synthesis measured. */
export interface Measurement {
  /** Counts over all stacks. */
  readonly counts: SecurityGroupCounts;
  /** Time to build the construct tree, in ms. */
  readonly buildMs: number;
  /** Time of `app.synth()`, in ms. */
  readonly synthMs: number;
}

/** What one plan A synthesis measured. */
export interface PlanAMeasurement extends Measurement {
  /** The keys of the service groups, for per-group checks. */
  readonly serviceGroups: string[];
}

/** The mesh policy of plan B: it lives in Consul intentions, not in security groups. */
export interface MeshCounts {
  /** Identities: services plus function versions. */
  readonly identities: number;
  /** Function version identities. */
  readonly functionIdentities: number;
  /** Resolved rules: one per source identity and destination service (intention sources). */
  readonly resolvedRules: number;
  /** Destination services with at least one rule: one `service-intentions` config entry each. */
  readonly intentionEntries: number;
  /** Rules as written in the config. */
  readonly declaredRules: number;
}

/** What one plan B synthesis measured. */
export interface PlanBMeasurement extends Measurement {
  /** The stacks' names, in the environment's order (`MeshEnvironment.stacks`). */
  readonly stackNames: string[];
  /** The rules of the security group all mesh functions share. */
  readonly functionGroup: GroupRules;
  /** The mesh model's policy. */
  readonly mesh: MeshCounts;
}

function tempOutdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lambda-mesh-${prefix}-`));
}

/**
 * Builds plan A as a team writes it by hand, synthesizes it and counts it. Everything is in one stack in an
 * imported VPC; the stack resource limit is lifted and the 10 MB template check acknowledged, so that the large
 * sizes synthesize at all (the counts say which limits they break).
 */
export function measurePlanA(size: PlanSize, options: MeasureOptions = {}): PlanAMeasurement {
  const outdir = tempOutdir('plan-a');
  try {
    const t0 = performance.now();
    const app = new App({
      outdir,
      context: { ...cdkJsonContext(), '@aws-cdk/core:stackResourceLimit': 0 },
      builtinCloudFormationValidation: options.builtinValidation ?? false,
    });
    const stack = new Stack(app, 'plan-a', { description: 'plan A: a security group per function version and per service, rules per pair' });
    // Measured, not deployed: the large sizes break these limits, and the counts report it.
    Validations.of(stack).acknowledge(
      { id: 'CloudFormation-Validate::F0007', reason: 'The benchmark measures plan A past 500 resources per stack; the count is reported, not deployed.' },
      { id: 'CloudFormation-Validate::F1101', reason: 'The benchmark measures plan A past a 10 MB template; the size is reported, not deployed.' },
      { id: 'Annotation::@aws-cdk/core:Stack.templateSize', reason: 'The benchmark reports the template size; it is not deployed.' },
    );
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-0123456789abcdef0', availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'] });
    const services = Array.from({ length: size.services }, (_, i) => ({
      name: serviceName(i),
      port: servicePort(i),
      group: new ec2.SecurityGroup(stack, serviceName(i), { vpc, description: `${serviceName(i)}: from the model functions that call it`, allowAllOutbound: false }),
    }));
    for (let m = 0; m < size.models; m++) {
      for (const version of versionNames(size.versions)) {
        const identity = `${modelName(m)}-${version}`;
        const group = new ec2.SecurityGroup(stack, identity, { vpc, description: `${identity}: to the services it calls`, allowAllOutbound: false });
        for (const service of services) {
          // Egress on the version's group and ingress on the service's group.
          group.connections.allowTo(service.group, ec2.Port.tcp(service.port), `${identity} to ${service.name}`);
        }
      }
    }
    const t1 = performance.now();
    const assembly = app.synth();
    const t2 = performance.now();
    return {
      counts: countSecurityGroups(templatesOf(assembly)),
      buildMs: t1 - t0,
      synthMs: t2 - t1,
      serviceGroups: services.map((s) => groupKeyOf(s.group)),
    };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** The environment name of plan B: its stacks are `plan-b-network`, ..., `plan-b-function-model-0001`, ... */
export const PLAN_B_NAME = 'plan-b';

/** Plan B's stacks other than the model functions' (network, control plane, mesh, services when it holds any), once each. */
export function planBFixedStacks(stackNames: readonly string[]): string[] {
  return [...new Set(stackNames.filter((x) => !x.startsWith(modelFunctionStackId(PLAN_B_NAME, ''))))];
}

/**
 * Names plan B's stacks for the report, with `<name>` for the environment name: the fixed stacks one by one, then
 * the model function stacks as one pattern (there is one per model function, hundreds at the large sizes).
 */
export function describePlanBStacks(stackNames: readonly string[]): string {
  const fixed = planBFixedStacks(stackNames).map((x) => `\`${x.replace(`${PLAN_B_NAME}-`, '<name>-')}\``);
  const perFunction = stackNames.some((x) => x.startsWith(modelFunctionStackId(PLAN_B_NAME, ''))) ? [`one \`${modelFunctionStackId('<name>', '<function>')}\` per model function`] : [];
  return [...fixed, ...perFunction].join(', ');
}

/** The environment config of plan B: every model (each version) may call every service with `GET /v1/*`. */
export function planBConfig(size: PlanSize): EnvironmentConfig {
  const services = Array.from({ length: size.services }, (_, i) => ({
    name: serviceName(i),
    port: servicePort(i),
    protocol: 'http',
    localPort: 18080 + i,
    // Registered by their owners, as plan A's services are: plan B adds no workloads of its own to compare.
    placement: 'external',
  }));
  const functions = Array.from({ length: size.models }, (_, i) => ({ name: modelName(i), versions: versionNames(size.versions) }));
  const rules = functions.flatMap((f) => services.map((s) => ({ from: f.name, to: s.name, http: { pathPrefix: '/v1/', methods: ['GET'] } })));
  // Through the loader's validation, as a config file would go.
  return validateConfig({ name: PLAN_B_NAME, services, functions, rules }, '(bench/plan-a-vs-b.ts)');
}

/** Builds the lambda-mesh environment for `size` from its config, synthesizes all its stacks and counts them. */
export function measurePlanB(size: PlanSize, options: MeasureOptions = {}): PlanBMeasurement {
  const outdir = tempOutdir('plan-b');
  try {
    const t0 = performance.now();
    const config = planBConfig(size);
    const app = new App({ outdir, context: cdkJsonContext(), builtinCloudFormationValidation: options.builtinValidation ?? false });
    const env = new MeshEnvironment(app, { config, configSource: '(bench/plan-a-vs-b.ts)', kubernetesOutdir: path.join(outdir, 'dist') });
    const t1 = performance.now();
    const assembly = app.synth();
    const t2 = performance.now();
    const counts = countSecurityGroups(templatesOf(assembly));
    const graph = env.mesh.graph();
    const stackNames = env.stacks.map((s) => s.stackName);
    const synthesized = assembly.stacksRecursively.map((s) => s.stackName);
    if ([...stackNames].sort().join() !== [...synthesized].sort().join()) {
      throw new Error(`plan B: the environment's stacks (${stackNames.join(', ')}) are not the synthesized ones (${synthesized.join(', ')})`);
    }
    return {
      counts,
      buildMs: t1 - t0,
      synthMs: t2 - t1,
      // In the environment's order, which the report lists; the assembly lists the same stacks in a dependency order.
      stackNames,
      functionGroup: counts.perGroup.get(groupKeyOf(env.networkStack.network.functionSecurityGroup)) ?? { inbound: 0, outbound: 0 },
      mesh: {
        identities: graph.identities.length,
        functionIdentities: graph.identities.filter((i) => i.kind === IdentityKind.FUNCTION_VERSION).length,
        resolvedRules: graph.rules.length,
        intentionEntries: new Set(graph.rules.map((r) => r.destination)).size,
        declaredRules: config.rules.length,
      },
    };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The report

interface Row {
  readonly size: PlanSize;
  readonly a: PlanAMeasurement;
  readonly b: PlanBMeasurement;
}

const MODELS = [10, 100, 500];
const SERVICES = [3, 10, 30];
const VERSIONS = [1, 2];

function n(x: number): string {
  return x.toLocaleString('en-US');
}

function s(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function mb(bytes: number): string {
  return (bytes / 1_000_000).toFixed(bytes < 100_000 ? 3 : 1);
}

function table(header: string[], rows: string[][], rightAligned = true): string {
  const align = header.map((_, i) => (i === header.length - 1 && !rightAligned ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** What plan A breaks, from its counts. */
function planALimits(c: SecurityGroupCounts): string {
  const broken: string[] = [];
  if (c.maxInboundPerGroup > SG_DEFAULT_RULES_QUOTA) {
    broken.push(c.maxInboundPerGroup > SG_RULES_CEILING ? 'inbound rules per group: over the 1,000 ceiling' : 'inbound rules per group (60)');
  }
  if (c.maxOutboundPerGroup > SG_DEFAULT_RULES_QUOTA) {
    broken.push('outbound rules per group (60)');
  }
  if (c.maxResourcesInStack > CFN_MAX_RESOURCES) {
    broken.push('500 resources per stack');
  }
  if (c.maxTemplateBytes > CFN_MAX_TEMPLATE_BYTES) {
    broken.push(c.maxTemplateBytes > CDK_VALIDATE_MAX_TEMPLATE_BYTES ? '1 MB template; CDK\'s 10 MB check' : '1 MB template');
  }
  return broken.length > 0 ? broken.join('; ') : 'none';
}

/** True when `pick` gives one value over every row that shares `key`. */
function constantAcross(rows: readonly Row[], key: (r: Row) => string, pick: (r: Row) => number): boolean {
  const seen = new Map<string, number>();
  return rows.every((r) => {
    const k = key(r);
    const v = pick(r);
    const prior = seen.get(k);
    seen.set(k, v);
    return prior === undefined || prior === v;
  });
}

function distinct(values: number[]): string {
  return [...new Set(values)].sort((x, y) => x - y).map(n).join(', ');
}

function report(rows: readonly Row[], totalMs: number, command: string, builtinValidation: boolean): string {
  const label = (r: Row): string[] => [n(r.size.models), n(r.size.services), String(r.size.versions)];
  const sizeOf = (r: Row): string => `${n(r.size.models)} x ${n(r.size.services)}${r.size.versions > 1 ? ` (V = ${r.size.versions})` : ''}`;
  const sgTable = table(
    ['N', 'M', 'V', 'A: SGs', 'A: ingress', 'A: egress', 'A: SG rules', 'B: SGs', 'B: ingress', 'B: egress', 'B: SG rules', 'B: function SG in/out'],
    rows.map((r) => [
      ...label(r),
      n(r.a.counts.securityGroups), n(r.a.counts.ingress), n(r.a.counts.egress), `**${n(r.a.counts.rules)}**`,
      n(r.b.counts.securityGroups), n(r.b.counts.ingress), n(r.b.counts.egress), `**${n(r.b.counts.rules)}**`,
      `${r.b.functionGroup.inbound}/${r.b.functionGroup.outbound}`,
    ]),
  );
  const limitsTable = table(
    ['N', 'M', 'V', 'A: max inbound on one SG', 'A: max outbound on one SG', 'A: resources in its stack', 'A: template MB', 'A: breaks', 'B: max inbound on one SG', 'B: max outbound on one SG', 'B: stacks', 'B: most resources in a stack', 'B: largest template MB'],
    rows.map((r) => [
      ...label(r),
      n(r.a.counts.maxInboundPerGroup), n(r.a.counts.maxOutboundPerGroup), n(r.a.counts.maxResourcesInStack), mb(r.a.counts.maxTemplateBytes), planALimits(r.a.counts),
      n(r.b.counts.maxInboundPerGroup), n(r.b.counts.maxOutboundPerGroup), n(r.b.counts.stacks), n(r.b.counts.maxResourcesInStack), mb(r.b.counts.maxTemplateBytes),
    ]),
  );
  const meshTable = table(
    ['N', 'M', 'V', 'B: identities', 'B: resolved rules (intention sources)', 'B: intention config entries', 'B: rules in the config', 'A: build s', 'A: synth s', 'B: build s', 'B: synth s'],
    rows.map((r) => [
      ...label(r),
      n(r.b.mesh.identities), n(r.b.mesh.resolvedRules), n(r.b.mesh.intentionEntries), n(r.b.mesh.declaredRules),
      s(r.a.buildMs), s(r.a.synthMs), s(r.b.buildMs), s(r.b.synthMs),
    ]),
  );
  const smallest = rows[0];
  const fixedTable = table(
    ['Stack / security group (logical ID)', 'inbound', 'outbound'],
    [...smallest.b.counts.perGroup.entries()]
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([key, g]) => [`\`${key.replace(`${PLAN_B_NAME}-`, '<name>-')}\``, String(g.inbound), String(g.outbound)]),
  ).replace('| ---: | ---: | ---: |', '| --- | ---: | ---: |');

  const pairs = (r: Row): number => r.size.models * r.size.versions * r.size.services;
  const formulaHolds = rows.every((r) => r.a.counts.ingress === pairs(r) && r.a.counts.egress === pairs(r)
    && r.a.counts.securityGroups === r.size.models * r.size.versions + r.size.services);
  const inboundIsNV = rows.every((r) => r.a.counts.maxInboundPerGroup === r.size.models * r.size.versions);
  const overQuota = rows.filter((r) => r.a.counts.maxInboundPerGroup > SG_DEFAULT_RULES_QUOTA);
  const nvOver = (r: Row): boolean => r.size.models * r.size.versions > SG_DEFAULT_RULES_QUOTA;
  const overQuotaText = overQuota.length === 0
    ? 'no size'
    : rows.every((r) => overQuota.includes(r) === nvOver(r))
      ? `every size where N x V > 60 (${[...new Set(overQuota.map((r) => r.size.models))].map((x) => `N = ${n(x)}`).join(' and ')} here, whatever M)`
      : overQuota.map(sizeOf).join(', ');
  const withinResources = rows.filter((r) => r.a.counts.maxResourcesInStack <= CFN_MAX_RESOURCES).map(sizeOf);
  const groupsOf = (r: Row): string => JSON.stringify([...r.b.counts.perGroup.entries()].sort(([x], [y]) => x.localeCompare(y)));
  const bFixedConstant = rows.every((r) => groupsOf(r) === groupsOf(rows[0]));
  const bRules = (r: Row): number => r.b.counts.rules;
  const grows = (constant: boolean): string => (constant ? 'do not grow' : '**grow**');
  const bConstantInN = constantAcross(rows, (r) => `${r.size.services}/${r.size.versions}`, bRules);
  const bConstantInM = constantAcross(rows, (r) => `${r.size.models}/${r.size.versions}`, bRules);
  const bConstantInV = constantAcross(rows, (r) => `${r.size.models}/${r.size.services}`, bRules);
  const bGroupsConstant = constantAcross(rows, () => '', (r) => r.b.counts.securityGroups);
  const bResourcesConstant = constantAcross(rows, () => '', (r) => r.b.counts.resources);
  const bBytesConstant = constantAcross(rows, () => '', (r) => r.b.counts.maxTemplateBytes);
  const worst = rows.reduce((w, r) => (r.a.counts.rules > w.a.counts.rules ? r : w), rows[0]);
  const biggestB = rows.reduce((w, r) => (r.b.counts.maxTemplateBytes > w.b.counts.maxTemplateBytes ? r : w), rows[0]);
  const smallestB = rows.reduce((w, r) => (r.b.counts.maxTemplateBytes < w.b.counts.maxTemplateBytes ? r : w), rows[0]);
  const bytesPerRule = (biggestB.b.counts.maxTemplateBytes - smallestB.b.counts.maxTemplateBytes) / Math.max(1, biggestB.b.mesh.resolvedRules - smallestB.b.mesh.resolvedRules);
  const rulesAtLimit = smallestB.b.mesh.resolvedRules + (CFN_MAX_TEMPLATE_BYTES - smallestB.b.counts.maxTemplateBytes) / Math.max(bytesPerRule, 1);
  const stacks = describePlanBStacks(rows.flatMap((r) => r.b.stackNames));
  const fixedStacks = planBFixedStacks(rows.flatMap((r) => r.b.stackNames));
  const fixedNames = fixedStacks.map((x) => x.replace(`${PLAN_B_NAME}-`, '').replace('-', ' '));
  const stacksAreNPlusFixed = rows.every((r) => r.b.counts.stacks === r.size.models + fixedStacks.length && r.b.stackNames.length === r.b.counts.stacks);

  return `# Plan A versus plan B: security groups counted from synthesized templates

Generated by \`${command}\` on ${new Date().toISOString().slice(0, 10)} (aws-cdk-lib ${cdkLibVersion()}, Node.js ${process.version},
${os.cpus().length} CPUs; ${s(totalMs)} s for all ${rows.length * 2} syntheses). Do not edit by hand: change
[bench/plan-a-vs-b.ts](../bench/plan-a-vs-b.ts) and run it again.

N model functions, each with V versions, call M backend services; every version may call every service.

- **Plan A** is what a least-privilege team writes by hand with aws-cdk-lib: one security group per function
  version and one per service (both \`allowAllOutbound: false\`), and for every (version, service) pair
  \`versionGroup.connections.allowTo(serviceGroup, Port.tcp(port))\`: an ingress rule on the service's group and
  the matching egress rule on the version's group. One stack in an imported VPC.
- **Plan B** is lambda-mesh: \`MeshEnvironment\` built from a config with the same functions and services and one
  L7 rule (\`GET /v1/*\`) per function and service, with the repository's cdk.json context. All of its stacks
  (${stacks}${stacksAreNPlusFixed ? `: N + ${fixedStacks.length} in all` : ''}) are counted.

## Results

Security groups and their rules (ingress and egress, inline entries plus separate resources):

${sgTable}

The limits plan A runs into (default quotas: 60 inbound and 60 outbound rules per security group, adjustable only
as long as rules per group x groups per network interface stay at or under 1,000; 500 resources per stack; a 1 MB
template body through S3):

${limitsTable}

Where plan B's per-pair policy lives (Consul intentions, from \`env.mesh.graph()\`), and the time each synthesis took:

${meshTable}

## What the numbers show

- Plan A is exactly the formula in every row: ${formulaHolds ? 'N x V x M ingress rules, N x V x M egress rules and N x V + M security groups' : '**not** N x V x M ingress plus N x V x M egress (see the table)'}.
  The largest size, ${sizeOf(worst)}, is ${n(worst.a.counts.rules)} rules in ${n(worst.a.counts.maxResourcesInStack)} resources and a
  ${mb(worst.a.counts.maxTemplateBytes)} MB template; building and synthesizing it took ${s(worst.a.buildMs + worst.a.synthMs)} s.
- ${inboundIsNV ? 'Each of plan A\'s service groups holds N x V inbound rules' : 'Plan A\'s most inbound rules on one group are in the table'}: over the default quota of 60 at
  ${overQuotaText}. At 500 models with 2 versions a service group needs 1,000 inbound rules, the
  ceiling that is left only when its network interfaces have a single security group.
- Plan A's rules reference other groups, so each is a separate resource. Only ${withinResources.length > 0 ? withinResources.join(', ') : 'no size'} stay
  within 500 resources per stack. Past it, aws-cdk-lib refuses to synthesize the stack (\`TooManyResourcesInStack\`)
  unless the limit is lifted, as this benchmark does; splitting it needs at least (resources / 500) stacks and a
  cross-stack reference for every group used in another stack.
- Plan B's security-group rules: ${distinct(rows.map(bRules))} in every row; they ${grows(bConstantInN)} with N, ${grows(bConstantInM)} with M and
  ${grows(bConstantInV)} with V. Its security groups: ${distinct(rows.map((r) => r.b.counts.securityGroups))}${bGroupsConstant ? ', the same in every row' : ''}; its resources over all stacks:
  ${distinct(rows.map((r) => r.b.counts.resources))}${bResourcesConstant ? ', the same in every row' : ''}. The group every mesh function shares has
  ${distinct(rows.map((r) => r.b.functionGroup.outbound))} outbound rule(s) (the mesh gateway and the VPC endpoints) and ${distinct(rows.map((r) => r.b.functionGroup.inbound))} inbound. The mesh
  gateway reaches the services through one egress rule per service subnet (per availability zone), not per
  service, so M adds no rule either.
- Plan B's stacks: ${distinct(rows.map((r) => r.b.counts.stacks))}${stacksAreNPlusFixed ? ` (N + ${fixedStacks.length}: ${fixedNames.join(', ')} and one per model function)` : ''}. The most
  resources in one of them: ${distinct(rows.map((r) => r.b.counts.maxResourcesInStack))}, ${rows.every((r) => r.b.counts.maxResourcesInStack <= CFN_MAX_RESOURCES) ? 'within CloudFormation\'s 500 at every size' : '**over** CloudFormation\'s 500 at some size'}: a model
  function's versions (5 resources each: the function, its role, two policies, its log group) share a stack only
  with each other.
- What grows in plan B is the policy, outside the network layer: N x V x M resolved rules (the intention sources),
  M \`service-intentions\` config entries (one per destination service) and N x M rules in the config, one per
  function and service, expanded per version by the model.${bBytesConstant ? '' : ` Where a stack carries that policy as data (deploy-time
  custom resources), its template grows with it: plan B's largest template is ${mb(biggestB.b.counts.maxTemplateBytes)} MB at ${sizeOf(biggestB)},
  ${biggestB.b.counts.maxTemplateBytes > CFN_MAX_TEMPLATE_BYTES ? '**over**' : 'within'} the 1 MB limit, without adding resources. Fitted between the smallest and the largest run, that
  is about ${n(Math.round(bytesPerRule))} bytes per resolved rule, so one stack would reach 1 MB near ${n(Math.round(rulesAtLimit / 1000) * 1000)} resolved rules (an
  extrapolation, not a measurement).`}

Plan B's fixed cost, by security group (the ${sizeOf(smallest)} run; ${bFixedConstant ? 'the same groups and rules at every size' : '**the groups or their rules differ between sizes**'}):

${fixedTable}

## Method

- Both plans are synthesized with \`app.synth()\` into a temporary directory in one process; the counts are read
  from the template JSON of every stack: \`AWS::EC2::SecurityGroup\` resources, their inline
  \`SecurityGroupIngress\`/\`SecurityGroupEgress\` entries, and \`AWS::EC2::SecurityGroupIngress\`/\`Egress\`
  resources. Each rule is attributed to the group it belongs to (its \`GroupId\`, followed across stacks through
  \`Fn::GetStackOutput\`/\`Fn::ImportValue\`) for the per-group maximums.
- "build" is the time to construct the app, "synth" the time of \`app.synth()\`, after one untimed warm-up
  synthesis of each plan (module loading). ${builtinValidation
    ? 'aws-cdk-lib\'s built-in CloudFormation validation was **on** (`--with-validation`), so "synth" includes it.'
    : 'aws-cdk-lib\'s built-in CloudFormation validation (`builtinCloudFormationValidation`, on by default in\n  2.276) was off for both plans: it is not synthesis, and on plan A\'s large templates it runs for minutes (it\n  skips templates over 10 MB, so its time does not even grow with size). `--with-validation` turns it on.'}
- Plan A's stack is synthesized with \`@aws-cdk/core:stackResourceLimit: 0\`, and its 500-resource, 10 MB and
  template-size findings acknowledged, so that every size synthesizes; "A: breaks" reports, from the counts, what
  aws-cdk-lib, CloudFormation or the VPC quotas would refuse. The template size is as aws-cdk-lib writes it
  (indented); \`suppressTemplateIndentation\` would shrink it, not change the resource count.
- Placeholders: a group with \`allowAllOutbound: false\` and no egress rule gets aws-cdk-lib's inline "Disallow all
  traffic" entry. It takes a rule slot in AWS but carries no policy, so the rule counts leave it out:
  ${distinct(rows.map((r) => r.a.counts.noTrafficPlaceholders))} in plan A (one per service group), ${distinct(rows.map((r) => r.b.counts.noTrafficPlaceholders))} in plan B.
- Plan B's config goes through the loader's validation (\`validateConfig\`), as a config file would. The compliance
  plugins (cdk-nag, cfn-guard) are not registered: they check templates, they do not change them.

## What this does not count

- **Plan B's intentions are not security-group rules.** They are Consul \`service-intentions\` config entries,
  counted separately above from the mesh model (\`env.mesh.graph()\`). Where the environment applies them at deploy
  time, they travel as data in a template: that shows in template size, not in resources or rules.
- **Plan B's fixed security-group cost is in its counts**, not left out: the groups in the table above (Consul
  servers and their load balancer, the mesh gateway's load balancer and tasks, the VPC endpoints, the shared
  function group, and the deploy-time functions that run in the VPC). It is the same at every size.
- **The services' own groups in plan B.** The services here are \`placement: external\`, as plan A's are
  registered by their owners, so lambda-mesh does not create their groups: each service's group must admit the mesh
  gateway on its sidecar port, one inbound rule per service (M in all), written by whoever owns the service. That is
  the one place where plan B's security-group rules grow with M; they do not grow with N or V. (A service that
  lambda-mesh runs on ECS, EC2 or EKS gets that rule from the library, in the services stack.)
- Plan A's functions, roles, and the Lambda Hyperplane network interfaces that each distinct security group adds
  (per subnet): plan A here is security groups and their rules only.
`;
}

function cdkLibVersion(): string {
  const pkg: unknown = JSON.parse(fs.readFileSync(require.resolve('aws-cdk-lib/package.json'), 'utf8'));
  return isRecord(pkg) && typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

function main(): void {
  const write = process.argv.includes('--write');
  const builtinValidation = process.argv.includes('--with-validation');
  const command = `npx tsx bench/plan-a-vs-b.ts --write${builtinValidation ? ' --with-validation' : ''}`;
  const options = { builtinValidation };
  const rows: Row[] = [];
  const start = performance.now();
  // Untimed: the first synthesis of each plan loads most of aws-cdk-lib.
  measurePlanA({ models: 1, services: 1, versions: 1 }, options);
  measurePlanB({ models: 1, services: 1, versions: 1 }, options);
  for (const versions of VERSIONS) {
    for (const models of MODELS) {
      for (const services of SERVICES) {
        const size = { models, services, versions };
        const a = measurePlanA(size, options);
        const b = measurePlanB(size, options);
        rows.push({ size, a, b });
        console.log(
          `N=${models} M=${services} V=${versions}: A ${n(a.counts.rules)} SG rules (build ${s(a.buildMs)} s, synth ${s(a.synthMs)} s); ` +
          `B ${n(b.counts.rules)} SG rules, ${n(b.mesh.resolvedRules)} mesh rules (build ${s(b.buildMs)} s, synth ${s(b.synthMs)} s)`,
        );
      }
    }
  }
  const totalMs = performance.now() - start;
  const doc = report(rows, totalMs, command, builtinValidation);
  console.log(`\n${doc}`);
  if (write) {
    fs.writeFileSync(DOC_FILE, doc);
    console.log(`wrote ${path.relative(process.cwd(), DOC_FILE)}`);
  }
  console.log(`total ${s(totalMs)} s`);
}

if (require.main === module) {
  main();
}
