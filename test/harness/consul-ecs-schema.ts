/**
 * Validates every `CONSUL_ECS_CONFIG_JSON` a template sets against the official schema of consul-ecs 0.10.0
 * (`config/schema.json` of hashicorp/consul-ecs, read from `../shared/schemas/consul-ecs/schema.json`, or
 * `$LAMBDA_MESH_CONSUL_ECS_SCHEMA`): the document mesh-init and health-sync read at start.
 *
 * In a template the value is an `Fn::Join` whose non-literal parts (the servers' load balancer name, the region)
 * resolve at deploy time; they are replaced by plausible values of the same kind before the JSON is parsed.
 */
import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ValidateFunction } from 'ajv';

/** Set to use another copy of the schema. */
export const CONSUL_ECS_SCHEMA_ENV = 'LAMBDA_MESH_CONSUL_ECS_SCHEMA';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Where the official schema is read from. */
export function consulEcsSchemaPath(): string {
  return path.resolve(process.env[CONSUL_ECS_SCHEMA_ENV] ?? path.join(REPO_ROOT, '..', 'shared', 'schemas', 'consul-ecs', 'schema.json'));
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled === undefined) {
    const file = consulEcsSchemaPath();
    if (!fs.existsSync(file)) {
      throw new Error(`the consul-ecs schema is not at ${file} (expected ../shared/schemas/consul-ecs/schema.json next to the repository, or set ${CONSUL_ECS_SCHEMA_ENV})`);
    }
    // The file names its meta-schema `https://json-schema.org/draft-07/schema`, which Ajv knows as `http://...#`:
    // the draft-07 rules are Ajv's own, so the meta-schema check is skipped rather than the draft changed.
    compiled = new Ajv({ strict: false, allErrors: true, validateSchema: false }).compile(JSON.parse(fs.readFileSync(file, 'utf8')) as object);
  }
  return compiled;
}

/** One `CONSUL_ECS_CONFIG_JSON` found in a template, parsed, with what the schema said about it. */
export interface ConsulEcsConfigFinding {
  /** `<logical id of the task definition>/<container name>`. */
  readonly where: string;
  readonly config: Record<string, unknown>;
  /** Ajv's errors, as `<instancePath> <message>`; empty when valid. */
  readonly errors: string[];
}

/** Validates one parsed config; returns the schema's complaints (none when valid). */
export function validateConsulEcsConfig(config: unknown): string[] {
  const validate = validator();
  return validate(config) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

/** Resolves a CloudFormation value to a string, with deploy-time parts replaced by plausible values. */
function render(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v['Fn::Join'])) {
      const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(separator);
    }
    if (v.Ref === 'AWS::Region') {
      return 'us-east-1';
    }
    if (v.Ref === 'AWS::AccountId') {
      return '123456789012';
    }
  }
  // A load balancer's DNS name, from a reference or an import: a hostname, as the real value is.
  return 'internal-consul-0123456789.us-east-1.elb.amazonaws.com';
}

/** Every `CONSUL_ECS_CONFIG_JSON` in `template` (a synthesized template), parsed and validated. */
export function consulEcsConfigsOf(template: { readonly Resources?: Record<string, { readonly Type: string; readonly Properties?: Record<string, unknown> }> }): ConsulEcsConfigFinding[] {
  const found: ConsulEcsConfigFinding[] = [];
  for (const [id, resource] of Object.entries(template.Resources ?? {})) {
    if (resource.Type !== 'AWS::ECS::TaskDefinition') {
      continue;
    }
    const containers = (resource.Properties?.ContainerDefinitions ?? []) as Array<{ Name: string; Environment?: Array<{ Name: string; Value: unknown }> }>;
    for (const c of containers) {
      for (const e of c.Environment ?? []) {
        if (e.Name === 'CONSUL_ECS_CONFIG_JSON') {
          const config = JSON.parse(render(e.Value)) as Record<string, unknown>;
          found.push({ where: `${id}/${c.Name}`, config, errors: validateConsulEcsConfig(config) });
        }
      }
    }
  }
  return found;
}
