import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument, type YAMLError } from 'yaml';
import { describeValue, LambdaMeshError } from '../../constructs/core/errors';
import { DNS_1123_LABEL_MAX_LENGTH } from '../../constructs/core/names';
import { DEFAULT_CONFIG } from './default';
import { CONFIG_SCHEMA, describePattern, type JsonSchemaNode } from './schema';
import { SAMPLE_SERVICES, type EnvironmentConfig } from './types';

/**
 * Details of a {@link ConfigError}.
 */
export interface ConfigErrorDetails {
  /**
   * The config file (or `-c config`, `(embedded default)`), used as the error's location.
   */
  readonly file: string;

  /**
   * The field path of the bad value: `services[1].port`, `rules[0].http.methods[2]`, or `(root)` for the document.
   */
  readonly field: string;

  /**
   * What was given, rendered for people (`"abc"`, `70000`, `(missing)`).
   */
  readonly given: string;

  /**
   * What would have been accepted.
   */
  readonly expected: string;
}

/**
 * Defines the error for a bad environment config: `<file>: <field>: given <given>, expected <expected>`.
 */
export class ConfigError extends LambdaMeshError {
  /**
   * True when `x` is a {@link ConfigError} (from any loaded copy of the library).
   */
  public static isConfigError(x: unknown): x is ConfigError {
    return LambdaMeshError.isLambdaMeshError(x) && CONFIG_ERROR_SYMBOL in x;
  }

  /**
   * The config file the error is about (the same as `location`).
   */
  public readonly file: string;

  /**
   * @param details where and what
   * @param cause the error this one reports, e.g. one the mesh model threw
   */
  constructor(details: ConfigErrorDetails, cause?: unknown) {
    super({ location: details.file, field: details.field, given: details.given, expected: details.expected });
    this.name = 'ConfigError';
    this.file = details.file;
    if (cause !== undefined) {
      this.cause = cause;
    }
    Object.defineProperty(this, CONFIG_ERROR_SYMBOL, { value: true });
  }
}

const CONFIG_ERROR_SYMBOL = Symbol.for('lambda-mesh.ConfigError');

/** The source that {@link resolveConfig} reports for the embedded default. */
const EMBEDDED_DEFAULT = '(embedded default)';

/**
 * Picks the environment config from the `config` context value: the embedded {@link DEFAULT_CONFIG} when it is
 * unset, else the file it names (YAML or JSON, resolved against the working directory).
 *
 * @param contextValue what `app.node.tryGetContext('config')` returns
 * @returns the config and where it came from: the absolute file path, or `(embedded default)`
 */
export function resolveConfig(contextValue: unknown): { config: EnvironmentConfig; source: string } {
  if (contextValue === undefined) {
    return { config: validateConfig(DEFAULT_CONFIG, EMBEDDED_DEFAULT), source: EMBEDDED_DEFAULT };
  }
  if (typeof contextValue !== 'string' || contextValue.trim() === '') {
    throw new ConfigError({
      file: '-c config',
      field: '(value)',
      given: describeValue(contextValue),
      expected: 'the path of a YAML or JSON environment config file, e.g. -c config=envs/dev.yaml',
    });
  }
  const file = path.resolve(process.cwd(), contextValue);
  return { config: loadConfigFile(file), source: file };
}

/**
 * Reads, parses (YAML 1.2, of which JSON is a subset) and validates an environment config file.
 *
 * @param file the path, also used as the location in error messages
 * @throws ConfigError when the file is missing, not YAML/JSON, or not a valid config
 */
export function loadConfigFile(file: string): EnvironmentConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const given = code === 'ENOENT' ? '(no such file)' : code === 'EISDIR' ? '(a directory)' : `(unreadable: ${code ?? String(e)})`;
    throw new ConfigError({ file, field: '(file)', given, expected: 'a readable YAML or JSON environment config file' }, e);
  }

  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: true });
  // Warnings (unresolved tags such as CloudFormation's !Ref, bad directives) would silently change values: refuse them.
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    throw yamlError(file, text, problem);
  }
  if (doc.contents === null) {
    throw new ConfigError({ file, field: '(root)', given: '(empty document)', expected: describeExpected(CONFIG_SCHEMA) });
  }
  return validateConfig(doc.toJS(), file);
}

function yamlError(file: string, text: string, error: YAMLError): ConfigError {
  const pos = error.linePos?.[0];
  const reason = error.message.split(/ at line \d+, column \d+/)[0].split('\n')[0];
  const line = pos ? (text.split(/\r?\n/)[pos.line - 1] ?? '').trim() : '';
  const lineText = line.length > 80 ? `${line.slice(0, 77)}...` : line;
  return new ConfigError(
    {
      file,
      field: pos ? `line ${pos.line}, column ${pos.col}` : '(syntax)',
      given: lineText ? `${JSON.stringify(lineText)} (${reason})` : `(${reason})`,
      expected: 'valid YAML or JSON',
    },
    error,
  );
}

/**
 * Checks a parsed document against {@link CONFIG_SCHEMA} and the rules a schema can't express (unique names,
 * identity length, region and availability zones), and returns it typed.
 *
 * Rule references (`from`, `to`) are not resolved here: the environment builder does that through the mesh
 * model, wrapping its errors with {@link withConfigField}.
 *
 * @param doc the parsed document
 * @param file the file it came from, for error messages
 * @throws ConfigError for the first problem in document order
 */
export function validateConfig(doc: unknown, file: string): EnvironmentConfig {
  const validate = compiledSchema();
  if (!validate(doc)) {
    const finding = firstFinding(doc, validate.errors ?? []);
    throw new ConfigError({ file, field: formatPath(finding.path), given: finding.given, expected: finding.expected });
  }
  checkSemantics(doc, file);
  return doc;
}

/**
 * Runs `fn`, reporting a {@link LambdaMeshError} it throws as a {@link ConfigError} at `file` and `field`
 * (keeping its `given` and `expected`, and the original as `cause`). Other errors, and ConfigErrors that already
 * name a field, propagate unchanged.
 *
 * `field` is the config field, or a function that derives it from the error (for a call that sets several
 * fields); when that function returns undefined, the error propagates unchanged.
 *
 * @example withConfigField(source, `rules[${i}].from`, () => mesh.allow(rule.from, rule.to))
 */
export function withConfigField<T>(file: string, field: string | ((error: LambdaMeshError) => string | undefined), fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (LambdaMeshError.isLambdaMeshError(e) && !ConfigError.isConfigError(e)) {
      const configField = typeof field === 'string' ? field : field(e);
      if (configField !== undefined) {
        throw new ConfigError({ file, field: configField, given: e.given, expected: e.expected }, e);
      }
    }
    throw e;
  }
}

let compiled: ValidateFunction<EnvironmentConfig> | undefined;

function compiledSchema(): ValidateFunction<EnvironmentConfig> {
  // allErrors so that the first problem in document order can be picked, not the first in schema order.
  compiled ??= new Ajv({ strict: false, allErrors: true, verbose: true }).compile<EnvironmentConfig>(CONFIG_SCHEMA);
  return compiled;
}

type Segment = string | number;

interface Finding {
  readonly path: readonly Segment[];
  readonly given: string;
  readonly expected: string;
  /** About the value's relation to others (duplicates, exclusive keys): less to the point than its own error. */
  readonly relational?: boolean;
}

/**
 * Converts Ajv's errors into findings and returns the first in document order, deeper before shallower.
 */
function firstFinding(doc: unknown, errors: readonly ErrorObject[]): Finding {
  // A failed oneOf reports each branch's failure too; the oneOf itself says what is meant.
  const umbrellas = errors.filter((e) => e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const findings = errors
    .filter((e) => !umbrellas.some((u) => e.schemaPath.startsWith(u)))
    .map((e) => toFinding(doc, e));
  findings.sort((a, b) => compareInDocumentOrder(doc, a.path, b.path) || rank(a) - rank(b));
  return findings[0] ?? { path: [], given: describeValue(doc), expected: describeExpected(CONFIG_SCHEMA) };
}

function rank(finding: Finding): number {
  return finding.relational ? 1 : 0;
}

function toFinding(doc: unknown, error: ErrorObject): Finding {
  const at = pointerToPath(doc, error.instancePath);
  const node = asNode(error.parentSchema);
  const data: unknown = error.data;
  const params: Readonly<Record<string, unknown>> = error.params;

  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const keys = Object.keys(node.properties ?? {});
      const hint = closest(key, keys);
      return {
        path: [...at, key],
        given: describeValue(key),
        expected: `one of the keys ${keys.join(', ')}${hint ? ` (did you mean ${hint}?)` : ''}`,
      };
    }
    case 'required': {
      const key = String(params.missingProperty);
      return { path: [...at, key], given: '(missing)', expected: describeExpected(node.properties?.[key] ?? {}) };
    }
    case 'uniqueItems': {
      const [first, again] = [Number(params.i), Number(params.j)].sort((x, y) => x - y);
      const items = Array.isArray(data) ? (data as unknown[]) : [];
      return {
        path: [...at, again],
        given: describeValue(items[again]),
        expected: `a value not already listed (the same as ${formatPath([...at, first])})`,
        relational: true,
      };
    }
    case 'minItems':
    case 'maxItems':
    case 'minProperties':
      return { path: at, given: describeValue(data), expected: describeCount(node) };
    case 'oneOf':
    case 'not':
      return exclusiveFinding(at, data, node, error.keyword);
    default:
      // type, enum, pattern, minimum, maximum, minLength, maxLength: the node says it all.
      return { path: at, given: describeValue(data), expected: describeExpected(node) };
  }
}

/**
 * A oneOf of `required` branches means "exactly one of these keys"; a not-anyOf of them means "at most one".
 */
function exclusiveFinding(at: readonly Segment[], data: unknown, node: JsonSchemaNode, keyword: 'oneOf' | 'not'): Finding {
  const branches = keyword === 'oneOf' ? (node.oneOf ?? []) : (node.not?.anyOf ?? []);
  const group = [...new Set(branches.flatMap((b) => b.required ?? []))];
  const present = isRecord(data) ? Object.keys(data).filter((k) => group.includes(k)) : [];
  const exactly = keyword === 'oneOf';
  const list = `${group.slice(0, -1).join(', ')} and ${group[group.length - 1]}`;
  if (present.length < 2) {
    return { path: at, given: describeValue(data), expected: `${exactly ? 'exactly' : 'at most'} one of ${list}`, relational: true };
  }
  return {
    path: [...at, present[1]],
    given: describeValue(isRecord(data) ? data[present[1]] : undefined),
    expected: `${exactly ? 'exactly' : 'at most'} one of ${list} (${present[0]} is already set)`,
    relational: true,
  };
}

/**
 * What a schema node accepts, in words.
 */
function describeExpected(node: JsonSchemaNode): string {
  if (node.enum) {
    return node.enum.length === 1 ? String(node.enum[0]) : `one of ${node.enum.map(quote).join(', ')}`;
  }
  if (node.pattern !== undefined) {
    return describePattern(node.pattern);
  }
  switch (node.type) {
    case 'integer':
      return `an integer${describeRange(node.minimum, node.maximum)}`;
    case 'number':
      return `a number${describeRange(node.minimum, node.maximum)}`;
    case 'string':
      if (node.minLength === 1) {
        return 'a non-empty string';
      }
      return node.minLength ? `a string of at least ${node.minLength} characters` : 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return describeCount(node);
    case 'object':
      return `an object with the keys ${Object.keys(node.properties ?? {}).join(', ')}`;
    default:
      return 'a valid value';
  }
}

function describeRange(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) {
    return ` from ${min} to ${max}`;
  }
  if (min !== undefined) {
    return ` of at least ${min}`;
  }
  return max !== undefined ? ` of at most ${max}` : '';
}

function describeCount(node: JsonSchemaNode): string {
  if (node.type === 'object') {
    const n = node.minProperties ?? 1;
    return `at least ${n === 1 ? 'one' : n} of the keys ${Object.keys(node.properties ?? {}).join(', ')}`;
  }
  const { minItems: min, maxItems: max } = node;
  const nonEmpty = min === 1 && max === undefined;
  const parts = [nonEmpty ? 'a non-empty array' : 'an array'];
  if (node.items?.type === 'object') {
    parts.push(`of objects with the keys ${Object.keys(node.items.properties ?? {}).join(', ')}`);
  } else if (node.items?.enum) {
    parts.push(`of ${node.items.enum.map(quote).join(', ')}`);
  }
  const items = (n: number): string => `${n} item${n === 1 ? '' : 's'}`;
  if (min !== undefined && max !== undefined) {
    parts.push(`with ${min} to ${items(max)}`);
  } else if (min !== undefined && !nonEmpty) {
    parts.push(`with at least ${items(min)}`);
  } else if (max !== undefined) {
    parts.push(`with at most ${items(max)}`);
  }
  return `${parts.join(' ')}${node.uniqueItems ? ', without duplicates' : ''}`;
}

function quote(value: string | number | boolean): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/**
 * The closest of `candidates` to a mistyped `key`, if it is close enough to be a likely typo.
 */
function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= 2 && distance < key.length && (best === undefined || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/**
 * Orders two paths as their values appear in the document; a path before its own ancestors (more specific first).
 * Missing keys sort after the keys present.
 */
function compareInDocumentOrder(doc: unknown, a: readonly Segment[], b: readonly Segment[]): number {
  let node = doc;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return position(node, a[i]) - position(node, b[i]);
    }
    node = child(node, a[i]);
  }
  return b.length - a.length;
}

function position(node: unknown, segment: Segment): number {
  if (typeof segment === 'number') {
    return segment;
  }
  const keys = isRecord(node) ? Object.keys(node) : [];
  const index = keys.indexOf(segment);
  return index === -1 ? keys.length : index;
}

function child(node: unknown, segment: Segment): unknown {
  if (Array.isArray(node) && typeof segment === 'number') {
    return node[segment] as unknown;
  }
  return isRecord(node) && typeof segment === 'string' && Object.hasOwn(node, segment) ? node[segment] : undefined;
}

/**
 * Converts a JSON pointer (`/services/1/port`) into path segments, numbers where the document has an array.
 */
function pointerToPath(doc: unknown, pointer: string): Segment[] {
  if (pointer === '') {
    return [];
  }
  const segments: Segment[] = [];
  let node = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment = Array.isArray(node) ? Number(key) : key;
    segments.push(segment);
    node = child(node, segment);
  }
  return segments;
}

/**
 * Writes a path as people read it: `services[1].port`, `(root)` for the document.
 */
function formatPath(segments: readonly Segment[]): string {
  if (segments.length === 0) {
    return '(root)';
  }
  return segments
    .map((s, i) => {
      if (typeof s === 'number') {
        return `[${s}]`;
      }
      if (/^[A-Za-z_$][\w$-]*$/.test(s)) {
        return i === 0 ? s : `.${s}`;
      }
      return `[${JSON.stringify(s)}]`;
    })
    .join('');
}

/** Ajv's `parentSchema` is always a node of CONFIG_SCHEMA, whose keywords JsonSchemaNode covers. */
function asNode(schema: unknown): JsonSchemaNode {
  return typeof schema === 'object' && schema !== null ? schema : {};
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * The checks JSON Schema can't express. Runs on a schema-valid config; reports the first problem found.
 */
function checkSemantics(config: EnvironmentConfig, file: string): void {
  const fail = (field: string, given: unknown, expected: string): never => {
    throw new ConfigError({ file, field, given: describeValue(given), expected });
  };

  // Services, functions and version identities share one namespace: a rule's `from` may name any of them,
  // and services and identities are all Consul services.
  const used = new Map<string, string>();
  const claim = (name: string, field: string, owner: string, given: unknown, what: string): void => {
    const first = used.get(name);
    if (first !== undefined) {
      fail(field, given, `${what} ("${name}" is already ${first})`);
    }
    used.set(name, owner);
  };
  config.services.forEach((s, i) => claim(s.name, `services[${i}].name`, `services[${i}].name`, s.name, 'a unique name'));
  config.functions.forEach((f, i) => {
    claim(f.name, `functions[${i}].name`, `functions[${i}].name`, f.name, 'a unique name');
    f.versions.forEach((v, j) => {
      const field = `functions[${i}].versions[${j}]`;
      const identity = `${f.name}-${v}`;
      if (identity.length > DNS_1123_LABEL_MAX_LENGTH) {
        fail(
          field,
          v,
          `a version short enough for the identity "${identity}" to have at most ${DNS_1123_LABEL_MAX_LENGTH} characters (it has ${identity.length})`,
        );
      }
      claim(identity, field, `the identity of ${field}`, v, `a version whose identity "${identity}" is unique`);
    });
  });

  config.services.forEach((s, i) => checkPlacement(config, s, `services[${i}]`, file));

  // The sidecars run consul-dataplane 2.0, which HashiCorp supports with Consul 2.0 servers only.
  const consulVersion = config.controlPlane?.consulVersion;
  if (consulVersion !== undefined && !/^2\.0\.\d+$/.test(consulVersion)) {
    fail('controlPlane.consulVersion', consulVersion, "a Consul 2.0 release such as '2.0.3': the mesh gateway and the services' sidecars run consul-dataplane 2.0, which supports Consul 2.0 servers (upgrade from 1.21 or 1.22 straight to 2.0: docs/adr/0011-consul-2-0-line-and-upgrade.md)");
  }

  const network = config.network ?? {};
  if (network.cidr !== undefined && !hostBitsZero(network.cidr)) {
    fail('network.cidr', network.cidr, `a network address with the host bits zero, such as '${networkAddress(network.cidr)}'`);
  }

  const region = config.env?.region;
  const zones = network.availabilityZones;
  if (region !== undefined && zones === undefined) {
    fail(
      'network.availabilityZones',
      undefined,
      `network.availabilityZones when env.region is set, e.g. ["${region}a", "${region}b"] (looking the zones up would need AWS credentials at synth)`,
    );
  }
  if (region !== undefined && zones !== undefined) {
    zones.forEach((zone, i) => {
      if (zone.slice(0, -1) !== region) {
        fail(`network.availabilityZones[${i}]`, zone, `an availability zone in ${region} (env.region), such as '${region}a'`);
      }
    });
  }
  if (zones !== undefined && network.maxAzs !== undefined && network.maxAzs !== zones.length) {
    fail(
      'network.maxAzs',
      network.maxAzs,
      `${zones.length}, the number of network.availabilityZones (or leave maxAzs out when the zones are listed)`,
    );
  }

  // The service subnets go out through the NAT gateways of the server egress path; there are none without it.
  if (network.serviceEgress === true && network.serverEgress === false) {
    fail(
      'network.serviceEgress',
      network.serviceEgress,
      'false (or left out) while network.serverEgress is false: the service subnets reach the internet through the NAT gateways that serverEgress creates',
    );
  }

  // A new cluster's nodes run in the service subnets: without a NAT path there they cannot pull the installs' images,
  // and the Helm releases never become ready. An existing cluster's network is the user's (and not visible here).
  if (config.kubernetes?.applyToCluster === true && config.eks !== undefined && config.eks.existingCluster === undefined && network.serviceEgress !== true) {
    throw new ConfigError({
      file,
      field: 'kubernetes.applyToCluster',
      given: `true, with a new EKS cluster (no eks.existingCluster) and network.serviceEgress ${network.serviceEgress === false ? 'false' : 'left out'}`,
      expected:
        "network.serviceEgress: true beside it: the new cluster's nodes run in the service subnets, which have no internet route without it, and must pull Istio's images from docker.io and Knative's from gcr.io (or leave applyToCluster out: the charts are then only written to dist/)",
    });
  }

  // Gloo routes only to functions of the mesh: each route names a declared function version, at its own path.
  const paths = new Set<string>();
  (config.eks?.gloo?.routes ?? []).forEach((route, i) => {
    const fn = config.functions.find((f) => f.name === route.function);
    if (fn === undefined) {
      return fail(`eks.gloo.routes[${i}].function`, route.function, `a function of the mesh (${config.functions.map((f) => f.name).join(', ') || 'functions is empty'})`);
    }
    if (!fn.versions.includes(route.version)) {
      fail(`eks.gloo.routes[${i}].version`, route.version, `a version of function ${fn.name} (${fn.versions.join(', ')})`);
    }
    if (paths.has(route.path)) {
      fail(`eks.gloo.routes[${i}].path`, route.path, 'a path no other route has');
    }
    paths.add(route.path);
  });
}

/** The protocol each sample backend speaks. */
const SAMPLE_PROTOCOLS: Readonly<Record<(typeof SAMPLE_SERVICES)[number], string>> = { 'feature-store': 'http', 'log-service': 'tcp', 'result-writer': 'http' };

/** Memory sizes (MiB) from `from` to `to` in steps of 1 GiB. */
function gibSteps(from: number, to: number): number[] {
  return Array.from({ length: (to - from) / 1024 + 1 }, (_, i) => from + i * 1024);
}

/**
 * Fargate's task memory sizes (MiB), per CPU unit count: 256 units take 512, 1024 or 2048 only (not 1536).
 * @see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
 */
const FARGATE_SIZES: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: gibSteps(1024, 4096),
  1024: gibSteps(2048, 8192),
  2048: gibSteps(4096, 16384),
  4096: gibSteps(8192, 30720),
};

function describeFargateSizes(sizes: readonly number[]): string {
  const last = sizes[sizes.length - 1];
  return sizes.length <= 4 ? `${sizes.slice(0, -1).join(', ')} or ${last} MiB` : `${sizes[0]} to ${last} MiB in steps of 1024`;
}

/** The ports a sidecar takes in the service's network namespace. */
const SIDECAR_PORTS = [20000, 22000];

/** Where a service's `workload.build` directory is: relative to the config file, or to the working directory. */
export function resolveBuildPath(file: string, build: string): string {
  const base = fs.existsSync(file) && fs.statSync(file).isFile() ? path.dirname(path.resolve(file)) : process.cwd();
  return path.resolve(base, build);
}

/** What a service needs to run where its placement says. */
function checkPlacement(config: EnvironmentConfig, s: EnvironmentConfig['services'][number], at: string, file: string): void {
  const fail = (field: string, given: unknown, expected: string): never => {
    throw new ConfigError({ file, field, given: typeof given === 'string' && given.startsWith('(') ? given : describeValue(given), expected });
  };
  const w = s.workload;
  if (s.securityGroupId !== undefined && s.placement !== 'external') {
    fail(`${at}.securityGroupId`, s.securityGroupId, `no securityGroupId for placement ${s.placement}: lambda-mesh makes the security groups of the workloads it runs (it is for placement external)`);
  }
  if (s.placement === 'external') {
    if (w !== undefined) {
      fail(`${at}.workload`, '(a workload)', 'no workload: an external service is run and registered in Consul by its owner (or give placement ecs, ec2 or eks)');
    }
    return;
  }
  if (w === undefined) {
    return fail(`${at}.workload`, undefined, `a workload for placement ${s.placement}: one of sample (${SAMPLE_SERVICES.join(', ')}), image (pinned by digest) or build (a directory with a Dockerfile), e.g. workload: { sample: ${SAMPLE_SERVICES[0]} }`);
  }
  if (s.placement === 'eks' && config.eks === undefined) {
    fail(`${at}.placement`, s.placement, 'ecs, ec2 or external: placement eks runs the service on the environment\'s EKS cluster, and this config has no eks section');
  }
  if (s.placement === 'eks' && config.eks?.existingCluster !== undefined) {
    fail(`${at}.placement`, s.placement, 'ecs, ec2 or external with eks.existingCluster: Consul on Kubernetes needs the endpoint and CA of a cluster the environment creates (for an existing cluster, use the ConsulKubernetes construct with eks.Cluster.fromClusterAttributes)');
  }
  if (s.placement === 'eks') {
    const consulNamespace = config.eks?.meshServicesNamespace ?? 'lambda-mesh-consul';
    const istioNamespace = config.kubernetes?.namespace ?? 'lambda-mesh';
    if (consulNamespace === istioNamespace) {
      fail(config.eks?.meshServicesNamespace !== undefined ? 'eks.meshServicesNamespace' : 'kubernetes.namespace', consulNamespace, `a namespace other than ${istioNamespace === consulNamespace ? `'${istioNamespace}'` : ''}: the services with placement eks are injected by Consul, kubernetes.namespace by Istio, and a namespace may not be injected by both`);
    }
    if (w.cpu !== undefined && w.cpu < 10) {
      fail(`${at}.workload.cpu`, w.cpu, 'CPU units from 10 to 16384 (1024 = one vCPU; on EKS the pod gets cpu * 1000 / 1024 millicores, at least 10)');
    }
    if (w.healthCheck?.path !== undefined) {
      fail(`${at}.workload.healthCheck.path`, w.healthCheck.path, `healthCheck.command for placement eks: the app listens on 127.0.0.1 (only its sidecar reaches it), where kubelet's HTTP probes cannot, e.g. command: [wget, -q, -O, /dev/null, 'http://127.0.0.1:${s.port}${w.healthCheck.path}']`);
    }
  }
  if (SIDECAR_PORTS.includes(s.port)) {
    fail(`${at}.port`, s.port, `a port other than ${SIDECAR_PORTS.join(' and ')}, which the service's sidecar takes beside it (its public listener and Envoy's readiness port)`);
  }
  if (w.instanceType !== undefined && s.placement !== 'ec2') {
    fail(`${at}.workload.instanceType`, w.instanceType, `no instanceType for placement ${s.placement} (it sizes the instances of placement ec2)`);
  }
  if (w.sample !== undefined && (s.protocol ?? 'tcp') !== SAMPLE_PROTOCOLS[w.sample]) {
    fail(`${at}.protocol`, s.protocol ?? '(missing: tcp by default)', `${SAMPLE_PROTOCOLS[w.sample]}: the sample ${w.sample} speaks ${SAMPLE_PROTOCOLS[w.sample]}`);
  }
  if (w.build !== undefined) {
    const dir = resolveBuildPath(file, w.build);
    if (!fs.existsSync(path.join(dir, 'Dockerfile'))) {
      fail(`${at}.workload.build`, w.build, `a directory with a Dockerfile (looked in ${dir})`);
    }
  }
  if (s.placement === 'ecs') {
    if (w.healthCheck?.path !== undefined) {
      fail(`${at}.workload.healthCheck.path`, w.healthCheck.path, `healthCheck.command for placement ecs: ECS runs health checks inside the container, e.g. command: [wget, -q, -O, /dev/null, 'http://127.0.0.1:${s.port}${w.healthCheck.path}']`);
    }
    const cpu = w.cpu ?? 256;
    const sizes = FARGATE_SIZES[cpu];
    if (sizes === undefined) {
      fail(`${at}.workload.cpu`, cpu, `Fargate task CPU units: ${Object.keys(FARGATE_SIZES).join(', ')}`);
    }
    const memory = w.memoryMiB ?? 1024;
    if (!sizes.includes(memory)) {
      fail(`${at}.workload.memoryMiB`, memory, `a Fargate memory size for ${cpu} CPU units: ${describeFargateSizes(sizes)}`);
    }
  }
  (w.upstreams ?? []).forEach((u, j) => {
    if (!config.services.some((other) => other.name === u)) {
      fail(`${at}.workload.upstreams[${j}]`, u, `a service of this config (${config.services.map((o) => o.name).join(', ')})`);
    }
  });
}

function cidrParts(cidr: string): { address: number; prefix: number } {
  const [ip, prefix] = cidr.split('/');
  const address = ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return { address, prefix: Number(prefix) };
}

function hostBitsZero(cidr: string): boolean {
  const { address, prefix } = cidrParts(cidr);
  return address % 2 ** (32 - prefix) === 0;
}

function networkAddress(cidr: string): string {
  const { address, prefix } = cidrParts(cidr);
  const network = address - (address % 2 ** (32 - prefix));
  return `${[24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.')}/${prefix}`;
}
