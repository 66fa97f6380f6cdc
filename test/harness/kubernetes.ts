import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './cdk-context';

/**
 * Environment variable that points the manifest validator at another directory of CRD YAML files.
 */
export const CRDS_DIR_ENV = 'LAMBDA_MESH_CRDS_DIR';

/**
 * Returns the directory of official CRD files that custom resources are validated against:
 * `$LAMBDA_MESH_CRDS_DIR`, or `../shared/crds` next to the repository.
 */
export function crdsDir(): string {
  return path.resolve(process.env[CRDS_DIR_ENV] ?? path.join(REPO_ROOT, '..', 'shared', 'crds'));
}

/**
 * Validates one Kubernetes manifest the way the API server would, as far as schemas go.
 *
 * Custom resources (Istio, Knative, Gloo) are checked against the `openAPIV3Schema` of their CRD in
 * {@link crdsDir}; built-in kinds against the `kubernetes-models` schemas. An apiVersion/kind that neither
 * knows is an error, so a typo in a kind cannot pass unchecked.
 *
 * Limits: Istio CRDs carry CEL rules (`x-kubernetes-validations`) that JSON-schema validation cannot run,
 * so the library must enforce those itself. Built-in kinds are not checked for unknown fields
 * (`kubernetes-models` schemas leave objects open); custom resources are (see {@link closeObjects}).
 *
 * @returns problems, one per line, each naming the object and the field path; empty when valid
 */
export function validateManifest(doc: object): string[] {
  if (!isRecord(doc)) {
    return [`manifest: expected an object, got ${describe(doc)}`];
  }
  const { apiVersion, kind } = doc;
  const metadata = isRecord(doc.metadata) ? doc.metadata : undefined;
  const label = [asText(apiVersion), asText(kind), describe(metadata?.name)].join(' ');
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || apiVersion === '' || kind === '') {
    return [`${label}: apiVersion and kind must be non-empty strings`];
  }
  const problems = [...validateMetadata(kind, apiVersion, doc.metadata)];
  const { group, version } = splitApiVersion(apiVersion);
  const crd = crdIndex(crdsDir()).get(`${group}/${kind}`);
  if (crd) {
    problems.push(...validateCustomResource(crd, version, doc));
  } else {
    problems.push(...validateBuiltIn(group, version, kind, doc));
  }
  return problems.map((p) => `${label}: ${p}`);
}

/**
 * Throws, listing every problem, unless all manifests are valid.
 */
export function expectValidManifests(docs: readonly object[]): void {
  const problems = docs.flatMap((doc) => validateManifest(doc));
  if (problems.length > 0) {
    throw new Error(`${problems.length} invalid manifest field(s):\n${problems.map((p) => `- ${p}`).join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Metadata: the API server validates ObjectMeta itself, outside the CRD schema (where it is just `object`).

const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function validateMetadata(kind: string, apiVersion: string, metadata: unknown): string[] {
  if (!isRecord(metadata)) {
    return ['metadata: required object is missing'];
  }
  const problems: string[] = [];
  const { name, namespace, labels, annotations } = metadata;
  if (typeof name !== 'string' || name === '') {
    problems.push(`metadata.name: required, got ${describe(name)}`);
  } else if (apiVersion === 'v1' && kind === 'Service') {
    // Service names become DNS labels of cluster DNS and environment variable prefixes.
    if (name.length > 63 || !DNS_1035_LABEL.test(name)) {
      problems.push(
        `metadata.name: ${describe(name)} is not a DNS-1035 label (a-z, 0-9, '-', starts with a letter, max 63)`,
      );
    }
  } else if (apiVersion === 'v1' && kind === 'Namespace') {
    if (name.length > 63 || !DNS_1123_LABEL.test(name)) {
      problems.push(`metadata.name: ${describe(name)} is not a DNS-1123 label (a-z, 0-9, '-', max 63)`);
    }
  } else if (name.length > 253 || !DNS_1123_SUBDOMAIN.test(name)) {
    problems.push(`metadata.name: ${describe(name)} is not a DNS-1123 subdomain (a-z, 0-9, '-', '.', max 253)`);
  }
  const namespaceOk = typeof namespace === 'string' && namespace.length <= 63 && DNS_1123_LABEL.test(namespace);
  if (namespace !== undefined && !namespaceOk) {
    problems.push(`metadata.namespace: ${describe(namespace)} is not a DNS-1123 label`);
  }
  problems.push(...validateStringMap('metadata.labels', labels, true));
  problems.push(...validateStringMap('metadata.annotations', annotations, false));
  return problems;
}

function validateStringMap(field: string, map: unknown, valuesAreLabels: boolean): string[] {
  if (map === undefined) {
    return [];
  }
  if (!isRecord(map)) {
    return [`${field}: expected a map of strings, got ${describe(map)}`];
  }
  const problems: string[] = [];
  for (const [key, value] of Object.entries(map)) {
    if (!isQualifiedName(key)) {
      problems.push(`${field}: key ${describe(key)} is not a qualified name ([prefix/]name, name max 63)`);
    }
    if (typeof value !== 'string') {
      problems.push(`${field}.${key}: expected a string, got ${describe(value)}`);
    } else if (valuesAreLabels && (value.length > 63 || !LABEL_VALUE.test(value))) {
      problems.push(
        `${field}.${key}: ${describe(value)} is not a valid label value (alphanumerics, '-', '_', '.', max 63)`,
      );
    }
  }
  return problems;
}

function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_1123_SUBDOMAIN.test(prefix))) {
    return false;
  }
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

// ---------------------------------------------------------------------------------------------------------
// Custom resources: Ajv against the CRD's openAPIV3Schema.

interface CrdVersion {
  readonly served: boolean;
  readonly schema: Record<string, unknown> | undefined;
}

interface Crd {
  readonly file: string;
  readonly group: string;
  readonly kind: string;
  readonly versions: ReadonlyMap<string, CrdVersion>;
}

const crdIndexes = new Map<string, ReadonlyMap<string, Crd>>();
const validators = new Map<string, ValidateFunction>();
let ajvInstance: Ajv | undefined;

function validateCustomResource(crd: Crd, version: string, doc: Record<string, unknown>): string[] {
  const crdVersion = crd.versions.get(version);
  const known = [...crd.versions].map(([name, v]) => (v.served ? name : `${name} (not served)`)).join(', ');
  if (!crdVersion) {
    return [`version ${version} of ${crd.group}/${crd.kind} is not defined in ${crd.file}; it has: ${known}`];
  }
  if (!crdVersion.served) {
    return [`version ${version} of ${crd.group}/${crd.kind} is not served (${crd.file}); served: ${known}`];
  }
  if (!crdVersion.schema) {
    return [`${crd.file} has no openAPIV3Schema for ${crd.group}/${version} ${crd.kind}`];
  }
  const key = `${crd.file}#${version}/${crd.kind}`;
  let validate = validators.get(key);
  if (!validate) {
    // Compiled on first use and kept: the Gloo and Istio schemas take up to a second each to compile.
    validate = ajv().compile(closeObjects(withImplicitRootFields(crdVersion.schema)));
    validators.set(key, validate);
  }
  return validate(doc) ? [] : formatAjvErrors(validate.errors ?? []);
}

function ajv(): Ajv {
  if (!ajvInstance) {
    // strict: false because CRD schemas use OpenAPI/Kubernetes keywords (x-kubernetes-*, nullable) that
    // are not JSON Schema; the formats are the OpenAPI ones the CRDs use (int32, int64, double, byte, date-time).
    ajvInstance = new Ajv({ strict: false, allErrors: true });
    addFormats(ajvInstance);
  }
  return ajvInstance;
}

/**
 * Adds the fields every custom resource may have at its root, which many CRDs (Istio, Gloo) leave undeclared.
 */
function withImplicitRootFields(schema: Record<string, unknown>): Record<string, unknown> {
  const declared = isRecord(schema.properties) ? schema.properties : {};
  return {
    ...schema,
    properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...declared },
  };
}

/**
 * Returns a copy of a structural schema in which objects with declared properties reject other fields.
 *
 * The API server drops unknown fields of custom resources (or rejects them with strict field validation,
 * the kubectl default), so a misspelt field would silently do nothing. Nodes marked
 * `x-kubernetes-preserve-unknown-fields` stay open. Branches of allOf/anyOf/oneOf/not are left alone:
 * in a structural schema they only constrain fields declared next to them, and closing them would reject
 * those fields.
 */
function closeObjects(schema: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...schema };
  if (isRecord(copy.properties)) {
    copy.properties = Object.fromEntries(
      Object.entries(copy.properties).map(([name, sub]) => [name, isRecord(sub) ? closeObjects(sub) : sub]),
    );
    if (copy.additionalProperties === undefined && copy['x-kubernetes-preserve-unknown-fields'] !== true) {
      copy.additionalProperties = false;
    }
  }
  if (isRecord(copy.items)) {
    copy.items = closeObjects(copy.items);
  }
  if (isRecord(copy.additionalProperties)) {
    copy.additionalProperties = closeObjects(copy.additionalProperties);
  }
  return copy;
}

function formatAjvErrors(errors: readonly ErrorObject[]): string[] {
  return errors.map((e) => {
    const at = e.instancePath === '' ? '/' : e.instancePath;
    if (e.keyword === 'additionalProperties') {
      return `${at}: unknown field ${describe(e.params.additionalProperty)}`;
    }
    if (e.keyword === 'enum') {
      return `${at}: ${e.message ?? 'must be one of'}: ${describe(e.params.allowedValues)}`;
    }
    return `${at}: ${e.message ?? e.keyword}`;
  });
}

function crdIndex(dir: string): ReadonlyMap<string, Crd> {
  const cached = crdIndexes.get(dir);
  if (cached) {
    return cached;
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(
      `CRD directory ${dir} does not exist: manifests cannot be validated without the official CRD files ` +
        `(expected ../shared/crds next to the repository, or set ${CRDS_DIR_ENV})`,
    );
  }
  const index = new Map<string, Crd>();
  for (const file of yamlFiles(dir)) {
    for (const crd of readCrds(dir, file)) {
      const key = `${crd.group}/${crd.kind}`;
      const existing = index.get(key);
      if (existing) {
        throw new Error(`${key} is defined twice: in ${existing.file} and ${crd.file}`);
      }
      index.set(key, crd);
    }
  }
  if (index.size === 0) {
    throw new Error(`CRD directory ${dir} holds no CustomResourceDefinition`);
  }
  crdIndexes.set(dir, index);
  return index;
}

function yamlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        return yamlFiles(full);
      }
      return /\.ya?ml$/.test(entry.name) ? [full] : [];
    });
}

function readCrds(dir: string, file: string): Crd[] {
  const parsed = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const docs = Array.isArray(parsed) ? parsed : [];
  const crds: Crd[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      throw new Error(`${file}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (!isRecord(value) || value.kind !== 'CustomResourceDefinition' || !isRecord(value.spec)) {
      continue;
    }
    const { group, names, versions } = value.spec;
    if (typeof group !== 'string' || !isRecord(names) || typeof names.kind !== 'string' || !Array.isArray(versions)) {
      throw new Error(`${file}: CustomResourceDefinition without spec.group, spec.names.kind or spec.versions`);
    }
    const byName = new Map<string, CrdVersion>();
    for (const v of versions as unknown[]) {
      if (!isRecord(v) || typeof v.name !== 'string') {
        throw new Error(`${file}: ${group}/${names.kind} has a version without a name`);
      }
      const schema = isRecord(v.schema) && isRecord(v.schema.openAPIV3Schema) ? v.schema.openAPIV3Schema : undefined;
      byName.set(v.name, { served: v.served === true, schema });
    }
    crds.push({ file: path.relative(dir, file), group, kind: names.kind, versions: byName });
  }
  return crds;
}

// ---------------------------------------------------------------------------------------------------------
// Built-in kinds: kubernetes-models.

interface ModelClass {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  new (data: object): { validate(): void };
}

let modelsModule: Record<string, unknown> | undefined;

function validateBuiltIn(group: string, version: string, kind: string, doc: Record<string, unknown>): string[] {
  const apiVersion = group === '' ? version : `${group}/${version}`;
  const model = findModel(group, version, kind);
  if (!model) {
    return [`unknown apiVersion/kind ${apiVersion} ${kind}: not a built-in kind and no CRD for it in ${crdsDir()}`];
  }
  try {
    new model(doc).validate();
    return [];
  } catch (e) {
    if (isRecord(e) && Array.isArray(e.errors)) {
      return formatAjvErrors(e.errors as ErrorObject[]);
    }
    return [e instanceof Error ? e.message : String(e)];
  }
}

function findModel(group: string, version: string, kind: string): ModelClass | undefined {
  const models = kubernetesModels();
  // The package exports the core group as `v1` and other groups camel-cased: networking.k8s.io -> networkingK8sIo.
  const versions = group === '' ? models : models[camelCaseGroup(group)];
  const byKind = isRecord(versions) ? versions[version] : undefined;
  const candidate = isRecord(byKind) ? byKind[kind] : undefined;
  if (typeof candidate !== 'function') {
    return undefined;
  }
  const model = candidate as ModelClass;
  const apiVersion = group === '' ? version : `${group}/${version}`;
  // Nested types (DeploymentSpec, ...) are exported next to the kinds; only kinds carry apiVersion and kind.
  return model.apiVersion === apiVersion && model.kind === kind ? model : undefined;
}

function kubernetesModels(): Record<string, unknown> {
  // Loaded on first use: the package is hundreds of modules, and most test files never validate a built-in kind.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  modelsModule ??= require('kubernetes-models') as Record<string, unknown>;
  return modelsModule;
}

function camelCaseGroup(group: string): string {
  return group
    .split('.')
    .map((part, i) => (i === 0 ? part : part.charAt(0).toUpperCase() + part.slice(1)))
    .join('');
}

// ---------------------------------------------------------------------------------------------------------

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash === -1
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : describe(value);
}

function describe(value: unknown): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
