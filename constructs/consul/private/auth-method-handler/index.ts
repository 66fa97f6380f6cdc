/**
 * The handler of the workload auth method custom resource: it keeps in Consul the ACL objects and catalog nodes
 * rendered at synth (../auth-method-objects.ts): the aws-iam auth method, its binding rules, the mesh gateway's
 * policy and role, and the synthetic nodes that ECS tasks and EC2 instances register their services under (the
 * start-up work of consul-ecs's controller).
 *
 * Ownership, so that several writers (other environments, operators, tools) can share one Consul:
 * - Every object this handler writes carries its owner's mark at the end of its Description (binding rules also
 *   their key), or, for nodes, in NodeMeta. It changes and deletes only objects that carry its mark.
 * - An auth method, policy, role or node of the wanted name that carries no mark, or another owner's, fails the
 *   deployment with both named: it is never taken over or overwritten.
 * - Binding rules are reconciled as a set: rules with this owner's mark that are no longer wanted are deleted,
 *   rules without it are left alone (an operator may add their own).
 * - An Update whose Owner changed (the construct moved: a new physical ID) takes over the objects that carry the old
 *   owner's mark, since the old properties show they are this resource's; CloudFormation's Delete of the old physical
 *   ID then finds them marked by the new owner and leaves them.
 *
 * Consul's ACL endpoints offer no check-and-set (no `?cas=`, no ModifyIndex check): safety comes from every object
 * having exactly one owner, and one owner's runs never overlapping (CloudFormation updates a resource once at a time,
 * and the function's reserved concurrency is 1). What another writer changed in an owned object (drift) is restored
 * to the rendered state and reported: in the log and in the response's `Drift` attribute.
 *
 * Idempotent: nothing is written when Consul already holds the rendered state. Update also removes what the old
 * properties had and the new ones do not; Delete removes everything the properties name, in reverse order (binding
 * rules, roles, policies, nodes, then the auth method, which takes its login tokens with it). A node that still has
 * services registered is kept, and the log says so.
 *
 * Runtime code: bundled by esbuild into the Lambda function, `@aws-sdk/*` left to the Lambda runtime.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/acl/auth-methods
 * @see https://developer.hashicorp.com/consul/api-docs/acl/binding-rules
 * @see https://developer.hashicorp.com/consul/api-docs/acl/roles
 * @see https://developer.hashicorp.com/consul/api-docs/acl/policies
 * @see https://developer.hashicorp.com/consul/api-docs/catalog
 */
import { log } from '../../../core/private/handler-log';
import type { CustomResourceEvent, CustomResourceResult } from '../../../core/private/cfn-response';
import type { ConsulApi, ConsulResponse } from '../../../intentions/private/consul-api';
import { connectionFromSecrets, consulClient } from '../../../intentions/private/consul-client';
import { isJsonObject, isZeroValue, type Json, sameConsulJson } from '../../../intentions/private/consul-json';
import {
  type AuthMethodObjects,
  type ConsulAuthMethodObject,
  type ConsulBindingRuleObject,
  type ConsulNodeObject,
  type ConsulPolicyObject,
  type ConsulRoleObject,
  ownerMark,
  shortOwnerId,
} from '../auth-method-objects';

/** What the handler needs from outside: built from the environment in Lambda, injectable in tests. */
export interface AuthMethodDependencies {
  readonly consul: ConsulApi;
}

/** The validated resource properties. */
export interface AuthMethodProperties {
  readonly owner: string;
  readonly objects: AuthMethodObjects;
}

/** The attributes of a successful response (CloudFormation shows them; names and counts only). */
export interface AuthMethodData extends Record<string, string> {
  /** The auth method's name, for `consulLogin.method`. */
  readonly AuthMethodName: string;
  /** What this run found changed by someone else and restored, e.g. `binding rule service:feature-store`; empty when nothing. */
  readonly Drift: string;
}

/** Handles one lifecycle event. Throws (reported as FAILED) with a message naming the object on any error. */
export async function handler(event: CustomResourceEvent, deps?: AuthMethodDependencies): Promise<CustomResourceResult<AuthMethodData>> {
  if (event.RequestType !== 'Create' && event.RequestType !== 'Update' && event.RequestType !== 'Delete') {
    throw new Error(`unknown RequestType ${JSON.stringify(event.RequestType)}`);
  }
  if (event.RequestType === 'Delete') {
    const props = tryParse(event.ResourceProperties);
    if (props === undefined) {
      // Properties that never parsed never wrote anything (a failed Create's rollback): nothing to remove.
      log({ action: 'none', requestType: 'Delete', reason: 'properties not valid' });
      return { PhysicalResourceId: event.PhysicalResourceId ?? 'lambda-mesh-auth-method' };
    }
    const consul = deps?.consul ?? (await connect());
    await removeAll(consul, props.owner, props.objects, undefined);
    return { PhysicalResourceId: event.PhysicalResourceId ?? physicalIdOf(props) };
  }

  const props = parseProperties(event.ResourceProperties);
  const old = event.RequestType === 'Update' ? tryParse(event.OldResourceProperties) : undefined;
  const consul = deps?.consul ?? (await connect());
  const run = new Run(consul, props.owner, old !== undefined && old.owner !== props.owner ? old.owner : undefined);
  await run.apply(props.objects);
  if (old !== undefined && old.owner === props.owner) {
    await removeAll(consul, props.owner, old.objects, props.objects);
  }
  return { PhysicalResourceId: physicalIdOf(props), Data: { AuthMethodName: props.objects.authMethod.Name, Drift: run.drift.join(', ') } };
}

/** One per owner and auth method: a new owner or name replaces the resource, and CloudFormation deletes the old one. */
export function physicalIdOf(props: AuthMethodProperties): string {
  return `lambda-mesh-auth-method-${props.objects.authMethod.Name}-${shortOwnerId(props.owner)}`;
}

async function connect(): Promise<ConsulApi> {
  return consulClient(await connectionFromSecrets(process.env));
}

// ---------------------------------------------------------------------------------------------------------------
// Apply: create what is missing, restore what drifted, remove this owner's binding rules that are not wanted.
// ---------------------------------------------------------------------------------------------------------------

class Run {
  /** The owned objects another writer had changed, restored by this run. */
  public readonly drift: string[] = [];
  private readonly mark: string;
  private readonly previousMark?: string;

  /** @param previousOwner the owner of the Update's old properties, when it differs: its objects are taken over */
  constructor(private readonly consul: ConsulApi, private readonly owner: string, private readonly previousOwner?: string) {
    this.mark = ownerMark(owner);
    this.previousMark = previousOwner === undefined ? undefined : ownerMark(previousOwner);
  }

  public async apply(objects: AuthMethodObjects): Promise<void> {
    await this.ensureAuthMethod(objects.authMethod);
    for (const policy of objects.policies) {
      await this.ensureNamed('policy', policy.Name, policy, samePolicy);
    }
    for (const role of objects.roles) {
      await this.ensureNamed('role', role.Name, role, sameRole);
    }
    await this.reconcileBindingRules(objects.authMethod.Name, objects.bindingRules);
    for (const node of objects.nodes) {
      await this.ensureNode(node);
    }
  }

  private async ensureAuthMethod(desired: ConsulAuthMethodObject): Promise<void> {
    const label = `auth method ${JSON.stringify(desired.Name)}`;
    const path = `/v1/acl/auth-method/${encodeURIComponent(desired.Name)}`;
    const current = await readOptional(this.consul, path, label);
    if (current === undefined) {
      await expectOk(this.consul.put('/v1/acl/auth-method', desired), 'PUT', '/v1/acl/auth-method', label);
      log({ action: 'created', object: label, owner: this.owner });
      return;
    }
    const previous = this.checkOwned(label, current.Description);
    if (sameAuthMethod(current, desired)) {
      log({ action: 'unchanged', object: label });
      return;
    }
    await expectOk(this.consul.put(path, desired), 'PUT', path, label);
    this.changed(label, previous);
  }

  /** A policy or role, found by name. */
  private async ensureNamed<T extends ConsulPolicyObject | ConsulRoleObject>(kind: 'policy' | 'role', name: string, desired: T, same: (current: Json, desired: T) => boolean): Promise<void> {
    const label = `${kind} ${JSON.stringify(name)}`;
    const current = await readOptional(this.consul, `/v1/acl/${kind}/name/${encodeURIComponent(name)}`, label);
    if (current === undefined) {
      await expectOk(this.consul.put(`/v1/acl/${kind}`, desired), 'PUT', `/v1/acl/${kind}`, label);
      log({ action: 'created', object: label, owner: this.owner });
      return;
    }
    const previous = this.checkOwned(label, current.Description);
    if (same(current, desired)) {
      log({ action: 'unchanged', object: label });
      return;
    }
    const path = `/v1/acl/${kind}/${encodeURIComponent(idOf(current, label))}`;
    await expectOk(this.consul.put(path, { ...desired, ID: current.ID }), 'PUT', path, label);
    this.changed(label, previous);
  }

  private async reconcileBindingRules(method: string, desired: readonly ConsulBindingRuleObject[]): Promise<void> {
    const listPath = `/v1/acl/binding-rules?authmethod=${encodeURIComponent(method)}`;
    const response = await this.consul.get(listPath);
    if (response.status !== 200 || !Array.isArray(response.body)) {
      throw new Error(`binding rules of auth method ${JSON.stringify(method)}: GET ${listPath} answered HTTP ${response.status}: ${describeBody(response.body)}`);
    }
    const ours = new Map<string, Json>();
    const previous = new Set<Json>();
    for (const rule of response.body.filter(isJsonObject)) {
      const previousKey = this.previousOwner === undefined ? undefined : ruleKeyOf(rule.Description, this.previousOwner);
      const key = ruleKeyOf(rule.Description, this.owner) ?? previousKey;
      if (previousKey !== undefined) {
        previous.add(rule);
      }
      if (key !== undefined) {
        if (ours.has(key)) {
          // Two of ours under one key (a run interrupted between create and record): keep one, drop the other.
          await this.deleteRule(rule, `binding rule ${key} (duplicate)`);
          continue;
        }
        ours.set(key, rule);
      }
    }
    for (const rule of desired) {
      const label = `binding rule ${rule.Key}`;
      const body = { Description: rule.Description, AuthMethod: method, Selector: rule.Selector, BindType: rule.BindType, BindName: rule.BindName };
      const current = ours.get(rule.Key);
      ours.delete(rule.Key);
      if (current === undefined) {
        await expectOk(this.consul.put('/v1/acl/binding-rule', body), 'PUT', '/v1/acl/binding-rule', label);
        log({ action: 'created', object: label, owner: this.owner });
      } else if (sameRule(current, body)) {
        log({ action: 'unchanged', object: label });
      } else {
        const path = `/v1/acl/binding-rule/${encodeURIComponent(idOf(current, label))}`;
        await expectOk(this.consul.put(path, { ...body, ID: current.ID }), 'PUT', path, label);
        this.changed(label, previous.has(current));
      }
    }
    for (const [key, rule] of ours) {
      await this.deleteRule(rule, `binding rule ${key}`);
    }
  }

  private async deleteRule(rule: Json, label: string): Promise<void> {
    const path = `/v1/acl/binding-rule/${encodeURIComponent(idOf(rule, label))}`;
    await expectOk(this.consul.delete(path), 'DELETE', path, label);
    log({ action: 'deleted', object: label, owner: this.owner });
  }

  private async ensureNode(desired: ConsulNodeObject): Promise<void> {
    const label = `node ${JSON.stringify(desired.Node)}`;
    const current = await readNode(this.consul, desired.Node);
    const body = { Node: desired.Node, Address: desired.Address, NodeMeta: desired.NodeMeta };
    if (current === undefined) {
      await expectTrue(this.consul.put('/v1/catalog/register', body), 'PUT', '/v1/catalog/register', label);
      log({ action: 'created', object: label, owner: this.owner });
      return;
    }
    const meta = isJsonObject(current.node.Meta) ? current.node.Meta : {};
    const previous = this.previousOwner !== undefined && meta['lambda-mesh-owner'] === shortOwnerId(this.previousOwner);
    if (meta['lambda-mesh-owner'] !== shortOwnerId(this.owner) && !previous) {
      throw new Error(
        `${label} is already in the catalog and not lambda-mesh owner ${JSON.stringify(this.owner)}'s (its meta: ${describeBody(meta)}): another tool (a consul-ecs controller?) registers it; remove one of the two`,
      );
    }
    if (current.node.Address === desired.Address && sameConsulJson(meta, desired.NodeMeta)) {
      log({ action: 'unchanged', object: label });
      return;
    }
    // Without a Service the registration changes the node only: the services registered under it stay.
    await expectTrue(this.consul.put('/v1/catalog/register', body), 'PUT', '/v1/catalog/register', label);
    this.changed(label, previous);
  }

  /** Throws unless the object is this owner's; true when it is the previous owner's (to be taken over). */
  private checkOwned(label: string, description: unknown): boolean {
    if (typeof description === 'string' && description.endsWith(this.mark)) {
      return false;
    }
    if (typeof description === 'string' && this.previousMark !== undefined && description.endsWith(this.previousMark)) {
      return true;
    }
    throw new Error(
      `${label} already exists and is not lambda-mesh owner ${JSON.stringify(this.owner)}'s (its description: ${describeBody(description)}). lambda-mesh never takes over an object it did not create: delete or rename it, or give this mesh another name`,
    );
  }

  /** Records a rewrite: taking over the previous owner's object, or restoring drift. */
  private changed(label: string, fromPreviousOwner: boolean): void {
    if (fromPreviousOwner) {
      log({ action: 'adopted', object: label, owner: this.owner, reason: `the resource's previous owner ${JSON.stringify(this.previousOwner)}` });
      return;
    }
    this.drift.push(label);
    log({ action: 'restored', object: label, owner: this.owner, reason: 'changed in Consul since the last deployment' });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Remove: what `objects` names and `keep` (the new properties, on Update) does not, in reverse order of creation.
// ---------------------------------------------------------------------------------------------------------------

async function removeAll(consul: ConsulApi, owner: string, objects: AuthMethodObjects, keep: AuthMethodObjects | undefined): Promise<void> {
  const mark = ownerMark(owner);
  const method = objects.authMethod.Name;
  const methodKept = keep?.authMethod.Name === method;
  if (!methodKept) {
    // The new properties reconciled the rules of their own method; the old method's rules go with it below, but
    // delete ours first so that a method that must stay (another owner's) keeps only its own.
    const listPath = `/v1/acl/binding-rules?authmethod=${encodeURIComponent(method)}`;
    const response = await consul.get(listPath);
    if (response.status === 200 && Array.isArray(response.body)) {
      for (const rule of response.body.filter(isJsonObject)) {
        const key = ruleKeyOf(rule.Description, owner);
        if (key !== undefined) {
          const path = `/v1/acl/binding-rule/${encodeURIComponent(idOf(rule, `binding rule ${key}`))}`;
          await expectOk(consul.delete(path), 'DELETE', path, `binding rule ${key}`);
          log({ action: 'deleted', object: `binding rule ${key}`, owner });
        }
      }
    }
  }
  const keptNames = (list: ReadonlyArray<{ readonly Name: string }> | undefined): Set<string> => new Set((list ?? []).map((o) => o.Name));
  for (const [kind, list, kept] of [['role', objects.roles, keptNames(keep?.roles)], ['policy', objects.policies, keptNames(keep?.policies)]] as const) {
    for (const o of list.filter((x) => !kept.has(x.Name))) {
      const label = `${kind} ${JSON.stringify(o.Name)}`;
      const current = await readOptional(consul, `/v1/acl/${kind}/name/${encodeURIComponent(o.Name)}`, label);
      if (current === undefined || typeof current.Description !== 'string' || !current.Description.endsWith(mark)) {
        log({ action: 'left', object: label, reason: current === undefined ? 'not found' : 'not this owner\'s' });
        continue;
      }
      const path = `/v1/acl/${kind}/${encodeURIComponent(idOf(current, label))}`;
      await expectOk(consul.delete(path), 'DELETE', path, label);
      log({ action: 'deleted', object: label, owner });
    }
  }
  const keptNodes = new Set((keep?.nodes ?? []).map((n) => n.Node));
  for (const node of objects.nodes.filter((n) => !keptNodes.has(n.Node))) {
    const label = `node ${JSON.stringify(node.Node)}`;
    const current = await readNode(consul, node.Node);
    const meta = current !== undefined && isJsonObject(current.node.Meta) ? current.node.Meta : {};
    if (current === undefined || meta['lambda-mesh-owner'] !== shortOwnerId(owner)) {
      log({ action: 'left', object: label, reason: current === undefined ? 'not found' : 'not this owner\'s' });
      continue;
    }
    if (current.services > 0) {
      log({ action: 'left', object: label, reason: `${current.services} service instance(s) still registered under it` });
      continue;
    }
    await expectTrue(consul.put('/v1/catalog/deregister', { Node: node.Node }), 'PUT', '/v1/catalog/deregister', label);
    log({ action: 'deleted', object: label, owner });
  }
  if (!methodKept) {
    const label = `auth method ${JSON.stringify(method)}`;
    const path = `/v1/acl/auth-method/${encodeURIComponent(method)}`;
    const current = await readOptional(consul, path, label);
    if (current === undefined || typeof current.Description !== 'string' || !current.Description.endsWith(mark)) {
      log({ action: 'left', object: label, reason: current === undefined ? 'not found' : 'not this owner\'s' });
      return;
    }
    // Consul deletes the method's remaining binding rules and the tokens it issued with it.
    await expectOk(consul.delete(path), 'DELETE', path, label);
    log({ action: 'deleted', object: label, owner });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Consul calls.
// ---------------------------------------------------------------------------------------------------------------

async function readOptional(consul: ConsulApi, path: string, label: string): Promise<Json | undefined> {
  const response = await consul.get(path);
  if (response.status === 404) {
    return undefined;
  }
  if (response.status !== 200 || !isJsonObject(response.body)) {
    throw new Error(`${label}: GET ${path} answered HTTP ${response.status}: ${describeBody(response.body)}`);
  }
  return response.body;
}

/** `GET /v1/catalog/node/:node` answers 200 with `null` for a node it does not know. */
async function readNode(consul: ConsulApi, node: string): Promise<{ readonly node: Json; readonly services: number } | undefined> {
  const path = `/v1/catalog/node/${encodeURIComponent(node)}`;
  const response = await consul.get(path);
  if (response.status === 404 || (response.status === 200 && (response.body === null || response.body === undefined))) {
    return undefined;
  }
  if (response.status !== 200 || !isJsonObject(response.body) || !isJsonObject(response.body.Node)) {
    throw new Error(`node ${JSON.stringify(node)}: GET ${path} answered HTTP ${response.status}: ${describeBody(response.body)}`);
  }
  const services = isJsonObject(response.body.Services) ? Object.keys(response.body.Services).length : 0;
  return { node: response.body.Node, services };
}

async function expectOk(pending: Promise<ConsulResponse>, method: string, path: string, label: string): Promise<ConsulResponse> {
  const response = await pending;
  if (response.status !== 200) {
    throw new Error(`${label}: ${method} ${path} answered HTTP ${response.status}: ${describeBody(response.body)}`);
  }
  return response;
}

async function expectTrue(pending: Promise<ConsulResponse>, method: string, path: string, label: string): Promise<void> {
  const response = await expectOk(pending, method, path, label);
  if (response.body !== true) {
    throw new Error(`${label}: ${method} ${path} answered ${describeBody(response.body)}, expected true`);
  }
}

function idOf(object: Json, label: string): string {
  if (typeof object.ID !== 'string' || object.ID === '') {
    throw new Error(`${label}: Consul returned it without an ID`);
  }
  return object.ID;
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison: what Consul returns against what was rendered (Consul adds indexes, IDs and zero values).
// ---------------------------------------------------------------------------------------------------------------

function sameAuthMethod(current: Json, desired: ConsulAuthMethodObject): boolean {
  return (
    current.Type === desired.Type &&
    current.DisplayName === desired.DisplayName &&
    current.Description === desired.Description &&
    isZeroValue(current.MaxTokenTTL) &&
    isZeroValue(current.TokenLocality) &&
    sameConsulJson(current.Config, desired.Config)
  );
}

function samePolicy(current: Json, desired: ConsulPolicyObject): boolean {
  return current.Description === desired.Description && current.Rules === desired.Rules && isZeroValue(current.Datacenters);
}

function sameRole(current: Json, desired: ConsulRoleObject): boolean {
  const policyNames = Array.isArray(current.Policies) ? current.Policies.filter(isJsonObject).map((p) => p.Name) : [];
  const identities = Array.isArray(current.ServiceIdentities) ? current.ServiceIdentities.filter(isJsonObject) : [];
  return (
    current.Description === desired.Description &&
    sameConsulJson(policyNames.sort(), desired.Policies.map((p) => p.Name).sort()) &&
    sameConsulJson(identities.map((i) => ({ ServiceName: i.ServiceName, Datacenters: i.Datacenters })), desired.ServiceIdentities.map((i) => ({ ServiceName: i.ServiceName }))) &&
    isZeroValue(current.NodeIdentities)
  );
}

function sameRule(current: Json, desired: Json): boolean {
  return ['Description', 'AuthMethod', 'Selector', 'BindType', 'BindName'].every((k) => (current[k] ?? '') === (desired[k] ?? '')) && isZeroValue(current.BindVars);
}

/** The key of one of `owner`'s binding rules, read from its Description; undefined for anyone else's. */
function ruleKeyOf(description: unknown, owner: string): string | undefined {
  if (typeof description !== 'string') {
    return undefined;
  }
  const match = /\[lambda-mesh owner ([0-9a-f]{12}) rule ([^\]]+)\]$/.exec(description);
  return match !== null && match[1] === shortOwnerId(owner) ? match[2] : undefined;
}

function describeBody(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body) ?? '(empty)';
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

// ---------------------------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------------------------

/** Validates the resource properties: `Owner` and `Objects` (the JSON of {@link AuthMethodObjects}). */
export function parseProperties(raw: Readonly<Record<string, unknown>> | undefined): AuthMethodProperties {
  const owner = raw?.Owner;
  if (typeof owner !== 'string' || owner.trim() === '') {
    throw new Error(`Owner must be a non-empty string, got ${JSON.stringify(owner)}`);
  }
  if (typeof raw?.Objects !== 'string') {
    throw new Error('Objects (the JSON of the auth method, policies, roles, binding rules and nodes) must be given');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.Objects);
  } catch (e) {
    throw new Error(`Objects is not JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!isJsonObject(parsed) || !isJsonObject(parsed.authMethod)) {
    throw new Error('Objects must be an object with authMethod, policies, roles, bindingRules and nodes');
  }
  const method = parsed.authMethod;
  if (typeof method.Name !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(method.Name) || method.Type !== 'aws-iam' || !isJsonObject(method.Config)) {
    throw new Error('Objects.authMethod must be an aws-iam auth method with a Name of letters, digits, - and _ and a Config');
  }
  for (const list of ['policies', 'roles', 'bindingRules', 'nodes'] as const) {
    if (!Array.isArray(parsed[list]) || !(parsed[list] as unknown[]).every(isJsonObject)) {
      throw new Error(`Objects.${list} must be an array of objects`);
    }
  }
  const rules = parsed.bindingRules as Json[];
  const keys = new Set<string>();
  for (const [i, r] of rules.entries()) {
    if (typeof r.Key !== 'string' || typeof r.Description !== 'string' || !r.Description.endsWith(ownerMark(owner, r.Key))) {
      throw new Error(`Objects.bindingRules[${i}] must have a Key and a Description ending with its owner mark`);
    }
    if (keys.has(r.Key)) {
      throw new Error(`Objects.bindingRules[${i}]: key ${JSON.stringify(r.Key)} is given twice`);
    }
    keys.add(r.Key);
  }
  for (const list of ['policies', 'roles'] as const) {
    for (const [i, o] of (parsed[list] as Json[]).entries()) {
      if (typeof o.Name !== 'string' || typeof o.Description !== 'string' || !o.Description.endsWith(ownerMark(owner))) {
        throw new Error(`Objects.${list}[${i}] must have a Name and a Description ending with its owner mark`);
      }
    }
  }
  if (typeof method.Description !== 'string' || !method.Description.endsWith(ownerMark(owner))) {
    throw new Error('Objects.authMethod.Description must end with its owner mark');
  }
  for (const [i, n] of (parsed.nodes as Json[]).entries()) {
    if (typeof n.Node !== 'string' || n.Node === '' || !isJsonObject(n.NodeMeta) || n.NodeMeta['lambda-mesh-owner'] !== shortOwnerId(owner)) {
      throw new Error(`Objects.nodes[${i}] must have a Node and the owner in NodeMeta`);
    }
  }
  return { owner, objects: parsed as unknown as AuthMethodObjects };
}

function tryParse(raw: Readonly<Record<string, unknown>> | undefined): AuthMethodProperties | undefined {
  try {
    return parseProperties(raw);
  } catch {
    return undefined;
  }
}
