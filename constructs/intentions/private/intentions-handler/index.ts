/**
 * The handler of the mesh intentions custom resource. It writes the config entries rendered at synth
 * (../config-entries.ts) to Consul, as one writer among several: other stacks, apps, operators and tools may have
 * sources in the same destination's entry, and this handler changes only what its owner wrote.
 *
 * For each entry, in a compare-and-set loop (read, merge, `PUT /v1/config?cas=<ModifyIndex>`; re-read and merge again
 * when another writer got in between, at most {@link MAX_CAS_ATTEMPTS} times):
 * - `service-intentions`: sources no lambda-mesh owner lists, and sources of other owners, are kept as they are; this
 *   owner's sources are replaced by the new ones. A source of someone else with the same name as one of ours fails
 *   the deployment with both named, unless it is identical (then another lambda-mesh owner's is shared, and an
 *   unowned one is left to its writer). Ownership is read from and written to the entry's `Meta`.
 * - `service-defaults`: `Protocol` is set, every other field kept; the protocol it had before is recorded so that
 *   the last owner to leave can restore it; two owners needing different protocols fail the deployment.
 * - Nothing is written when nothing changes: a re-applied deployment makes no PUT.
 *
 * Update also releases the entries the old properties had and the new ones do not; Delete releases everything the
 * properties name. Releasing removes only this owner's sources (the entry itself when nothing else is left in it).
 * Order: service-defaults before the intentions that need them; released in the reverse order.
 *
 * Runtime code: bundled by esbuild into the Lambda function, `@aws-sdk/*` left to the Lambda runtime.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/config
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
 */
import { gunzipSync } from 'zlib';
import { log } from '../../../core/private/handler-log';
import type { CustomResourceEvent, CustomResourceResult } from '../../../core/private/cfn-response';
import type { ConsulApi, ConsulResponse } from '../consul-api';
import { connectionFromSecrets, consulClient } from '../consul-client';
import { canonicalJson, isJsonObject, isZeroValue, type Json } from '../consul-json';
import {
  CONFIG_ENTRY_MAX_BYTES,
  type ConsulConfigEntry,
  META_PREFIX,
  META_VALUE_MAX_BYTES,
  metaProblem,
  ownerId,
  PREVIOUS_PROTOCOL_KEY,
  protocolOwnershipMeta,
  readOwnership,
  type ServiceDefaultsConfigEntry,
  type ServiceIntentionsConfigEntry,
  sourceOwnershipMeta,
  withoutOwner,
} from '../config-entries';

/** What the handler needs from outside: built from the environment in Lambda, injectable in tests. */
export interface IntentionsDependencies {
  readonly consul: ConsulApi;
}

/** How many times one entry is read, merged and written before a run of CAS conflicts fails the deployment. */
export const MAX_CAS_ATTEMPTS = 5;

/** The validated resource properties. */
export interface IntentionsProperties {
  readonly owner: string;
  readonly entries: readonly ConsulConfigEntry[];
}

/** Handles one lifecycle event. Throws (reported as FAILED) with a message naming the entry on any error. */
export async function handler(event: CustomResourceEvent, deps?: IntentionsDependencies): Promise<CustomResourceResult<never>> {
  if (event.RequestType !== 'Create' && event.RequestType !== 'Update' && event.RequestType !== 'Delete') {
    throw new Error(`unknown RequestType ${JSON.stringify(event.RequestType)}`);
  }
  if (event.RequestType === 'Delete') {
    let props: IntentionsProperties;
    try {
      props = parseProperties(event.ResourceProperties);
    } catch (e) {
      // Properties that never parsed never wrote anything (a failed Create's rollback): nothing to release.
      log({ action: 'none', requestType: 'Delete', reason: `properties not valid: ${e instanceof Error ? e.message : String(e)}` });
      return { PhysicalResourceId: event.PhysicalResourceId ?? 'lambda-mesh-intentions' };
    }
    const consul = deps?.consul ?? (await connect());
    await releaseAll(consul, props.owner, props.entries);
    return { PhysicalResourceId: event.PhysicalResourceId ?? physicalIdOf(props.owner) };
  }

  const props = parseProperties(event.ResourceProperties);
  // Old properties that do not parse (or another owner's, which CloudFormation releases with a Delete after the
  // replacement this new physical ID causes) release nothing here.
  const old = event.RequestType === 'Update' ? tryParse(event.OldResourceProperties) : undefined;
  const consul = deps?.consul ?? (await connect());
  const ordered = [...props.entries.filter(isDefaults), ...props.entries.filter((e) => !isDefaults(e))];
  for (const entry of ordered) {
    await reconcile(consul, entry.Kind, entry.Name, props.owner, (current) => (isDefaults(entry) ? planDefaults(current, entry, props.owner) : planIntentions(current, entry, props.owner)));
  }
  if (old && old.owner === props.owner) {
    const wanted = new Set(props.entries.map(keyOf));
    await releaseAll(consul, props.owner, old.entries.filter((e) => !wanted.has(keyOf(e))));
  }
  return { PhysicalResourceId: physicalIdOf(props.owner) };
}

/** The physical ID: one per owner, so a new owner replaces the resource (and CloudFormation releases the old one). */
export function physicalIdOf(owner: string): string {
  return `lambda-mesh-intentions-${ownerId(owner)}`;
}

async function connect(): Promise<ConsulApi> {
  return consulClient(await connectionFromSecrets(process.env));
}

/** Removes this owner's part of each entry: intentions first, then the service-defaults they needed. */
async function releaseAll(consul: ConsulApi, owner: string, entries: readonly ConsulConfigEntry[]): Promise<void> {
  const ordered = [...entries.filter((e) => !isDefaults(e)), ...entries.filter(isDefaults)];
  for (const entry of ordered) {
    await reconcile(consul, entry.Kind, entry.Name, owner, (current) => (isDefaults(entry) ? planDefaultsRelease(current, owner) : planIntentionsRelease(current, owner)));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The compare-and-set loop.
// ---------------------------------------------------------------------------------------------------------------

/** What to do with one entry, given what Consul has now. */
type Plan =
  | { readonly op: 'none' }
  | { readonly op: 'put'; readonly entry: Json; readonly cas: number }
  | { readonly op: 'delete'; readonly cas: number };

/** An entry as Consul returned it, with the index to compare-and-set against. */
interface Current {
  readonly entry: Json;
  readonly modifyIndex: number;
}

async function reconcile(consul: ConsulApi, kind: string, name: string, owner: string, plan: (current: Current | undefined) => Plan): Promise<void> {
  const label = `${kind} ${JSON.stringify(name)}`;
  const entryPath = `/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;
  try {
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      const current = await read(consul, entryPath);
      const next = plan(current);
      if (next.op === 'none') {
        log({ action: 'unchanged', kind, name, owner });
        return;
      }
      let written: boolean;
      if (next.op === 'put') {
        checkWritable(next.entry);
        written = expectBoolean(await consul.put(`/v1/config?cas=${next.cas}`, next.entry), 'PUT', `/v1/config?cas=${next.cas}`);
      } else {
        const path = `${entryPath}?cas=${next.cas}`;
        written = expectBoolean(await consul.delete(path), 'DELETE', path);
      }
      if (written) {
        log({ action: next.op === 'delete' ? 'deleted' : current === undefined ? 'created' : 'updated', kind, name, owner });
        return;
      }
      log({ action: 'cas-conflict', kind, name, owner, attempt: String(attempt) });
    }
  } catch (e) {
    throw new Error(`${label}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  throw new Error(
    `${label}: gave up after ${MAX_CAS_ATTEMPTS} compare-and-set conflicts in a row: another writer changed the entry between each read and write. Deploy again when it has settled.`,
  );
}

async function read(consul: ConsulApi, path: string): Promise<Current | undefined> {
  const response = await consul.get(path);
  if (response.status === 404) {
    return undefined;
  }
  if (response.status !== 200 || !isJsonObject(response.body)) {
    throw new Error(`GET ${path} answered HTTP ${response.status}: ${describeBody(response.body)}`);
  }
  const modifyIndex = response.body.ModifyIndex;
  if (typeof modifyIndex !== 'number' || !Number.isSafeInteger(modifyIndex) || modifyIndex < 1) {
    throw new Error(`GET ${path} answered an entry without a ModifyIndex`);
  }
  return { entry: response.body, modifyIndex };
}

function expectBoolean(response: ConsulResponse, method: string, path: string): boolean {
  if (response.status === 200 && typeof response.body === 'boolean') {
    return response.body;
  }
  throw new Error(`${method} ${path} answered HTTP ${response.status}: ${describeBody(response.body)}`);
}

/** What Consul would refuse in a merged entry, said before writing it. */
function checkWritable(entry: Json): void {
  const problem = metaProblem((entry.Meta ?? {}) as Record<string, string>);
  if (problem !== undefined) {
    throw new Error(`the merged entry would break Consul's limits: ${problem}`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(entry));
  if (bytes > CONFIG_ENTRY_MAX_BYTES) {
    throw new Error(`the merged entry would have ${bytes} bytes, more than ${CONFIG_ENTRY_MAX_BYTES} (raft's suggested maximum log entry)`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// service-intentions.
// ---------------------------------------------------------------------------------------------------------------

/** Merges this owner's sources into the current entry; see the file comment for the rules. */
function planIntentions(current: Current | undefined, desired: ServiceIntentionsConfigEntry, owner: string): Plan {
  const id = ownerId(owner);
  const ours = new Map<string, Json>(desired.Sources.map((s) => [s.Name, { ...s }]));
  if (current === undefined) {
    return {
      op: 'put',
      cas: 0,
      entry: { ...scopeOf(desired), Kind: desired.Kind, Name: desired.Name, Sources: [...ours.values()], Meta: sourceOwnershipMeta(owner, [...ours.keys()]) },
    };
  }
  const claims = readOwnership(current.entry.Meta as Json | undefined);
  const mine = claims.get(id)?.sources ?? new Set<string>();
  const otherOwners = (name: string): string[] =>
    [...claims.entries()].filter(([cid, c]) => cid !== id && c.sources.has(name)).map(([cid, c]) => c.owner ?? `(owner ${cid})`);
  const scope = scopeOf(current.entry);

  const next: Json[] = [];
  const claimed: string[] = [];
  const seen = new Set<string>();
  for (const src of sourcesOf(current.entry)) {
    const name = plainName(src);
    const wanted = name === undefined ? undefined : ours.get(name);
    if (name !== undefined && wanted !== undefined) {
      seen.add(name);
      const others = otherOwners(name);
      const same = sameSource(src, wanted, scope);
      if (mine.has(name)) {
        if (others.length > 0 && !same) {
          throw conflict(name, `also written by lambda-mesh owner ${others.map((o) => JSON.stringify(o)).join(', ')}`);
        }
        next.push(wanted);
        claimed.push(name);
      } else if (same) {
        // Identical: shared with another lambda-mesh owner; someone else's is left to them (not claimed).
        next.push(writableSource(src));
        if (others.length > 0) {
          claimed.push(name);
        }
      } else {
        throw conflict(name, others.length > 0 ? `written by lambda-mesh owner ${others.map((o) => JSON.stringify(o)).join(', ')}` : 'written outside lambda-mesh (no owner lists it)');
      }
    } else if (name !== undefined && mine.has(name) && otherOwners(name).length === 0) {
      // Ours and no longer wanted.
      continue;
    } else {
      next.push(writableSource(src));
    }
  }
  for (const [name, src] of ours) {
    if (!seen.has(name)) {
      next.push(src);
      claimed.push(name);
    }
  }
  return planWrite(current, { ...writableEntry(current.entry), Sources: next, Meta: { ...withoutOwner(metaOf(current.entry), id), ...sourceOwnershipMeta(owner, claimed) } });
}

/** Removes this owner's sources (those no other owner also claims) and its Meta; deletes an entry left empty. */
function planIntentionsRelease(current: Current | undefined, owner: string): Plan {
  if (current === undefined) {
    return { op: 'none' };
  }
  const id = ownerId(owner);
  const claims = readOwnership(current.entry.Meta as Json | undefined);
  const mine = claims.get(id);
  if (mine === undefined) {
    return { op: 'none' };
  }
  const claimedByOthers = (name: string): boolean => [...claims.entries()].some(([cid, c]) => cid !== id && c.sources.has(name));
  const next = sourcesOf(current.entry)
    .filter((src) => {
      const name = plainName(src);
      return name === undefined || !mine.sources.has(name) || claimedByOthers(name);
    })
    .map(writableSource);
  return planWrite(current, { ...writableEntry(current.entry), Sources: next, Meta: withoutOwner(metaOf(current.entry), id) });
}

// ---------------------------------------------------------------------------------------------------------------
// service-defaults.
// ---------------------------------------------------------------------------------------------------------------

function planDefaults(current: Current | undefined, desired: ServiceDefaultsConfigEntry, owner: string): Plan {
  const id = ownerId(owner);
  const protocol: string = desired.Protocol;
  if (current === undefined) {
    return { op: 'put', cas: 0, entry: { ...scopeOf(desired), Kind: desired.Kind, Name: desired.Name, Protocol: protocol, Meta: protocolOwnershipMeta(owner, protocol) } };
  }
  const claims = readOwnership(current.entry.Meta as Json | undefined);
  const disagreeing = [...claims.entries()].filter(([cid, c]) => cid !== id && c.protocol !== undefined && c.protocol !== protocol);
  if (disagreeing.length > 0) {
    const [, other] = disagreeing[0];
    throw new Error(
      `lambda-mesh owner ${JSON.stringify(other.owner ?? '(unknown)')} needs protocol ${JSON.stringify(other.protocol)} for this service, and this one (${JSON.stringify(owner)}) needs ${JSON.stringify(protocol)}: declare the service with the same protocol in both meshes`,
    );
  }
  const meta = { ...withoutOwner(metaOf(current.entry), id), ...protocolOwnershipMeta(owner, protocol) };
  const anyClaim = [...claims.values()].some((c) => c.protocol !== undefined);
  if (!anyClaim && !(PREVIOUS_PROTOCOL_KEY in meta)) {
    // The entry was there before lambda-mesh: remember its protocol for the last owner to restore.
    const before = current.entry.Protocol;
    meta[PREVIOUS_PROTOCOL_KEY] = typeof before === 'string' ? before : '';
  }
  return planWrite(current, { ...writableEntry(current.entry), Protocol: protocol, Meta: meta });
}

function planDefaultsRelease(current: Current | undefined, owner: string): Plan {
  if (current === undefined) {
    return { op: 'none' };
  }
  const id = ownerId(owner);
  const claims = readOwnership(current.entry.Meta as Json | undefined);
  if (!claims.has(id)) {
    return { op: 'none' };
  }
  const meta = withoutOwner(metaOf(current.entry), id);
  const next: Json = { ...writableEntry(current.entry), Meta: meta };
  const othersRemain = [...claims.entries()].some(([cid, c]) => cid !== id && c.protocol !== undefined);
  if (othersRemain) {
    return planWrite(current, next);
  }
  if (PREVIOUS_PROTOCOL_KEY in meta) {
    const previous = meta[PREVIOUS_PROTOCOL_KEY];
    delete meta[PREVIOUS_PROTOCOL_KEY];
    if (previous === '') {
      delete next.Protocol;
    } else {
      next.Protocol = previous;
    }
    return planWrite(current, next);
  }
  // lambda-mesh created it: gone with its last owner, unless someone has since added settings of their own.
  delete next.Protocol;
  const foreign = Object.entries(next).filter(([k, v]) => !['Kind', 'Name', 'Namespace', 'Partition', 'Meta'].includes(k) && !isZeroValue(v));
  if (foreign.length === 0 && Object.keys(meta).length === 0) {
    return { op: 'delete', cas: current.modifyIndex };
  }
  return planWrite(current, next);
}

// ---------------------------------------------------------------------------------------------------------------
// Entry helpers.
// ---------------------------------------------------------------------------------------------------------------

/** Put `next` if it differs from the current entry; delete an intentions entry that has no sources left. */
function planWrite(current: Current, next: Json): Plan {
  if (next.Meta !== undefined && Object.keys(next.Meta as Json).length === 0) {
    delete next.Meta;
  }
  if (next.Kind === 'service-intentions' && Array.isArray(next.Sources) && next.Sources.length === 0) {
    // Consul requires at least one source: an entry with none left is deleted.
    return { op: 'delete', cas: current.modifyIndex };
  }
  return sameEntry(current.entry, next) ? { op: 'none' } : { op: 'put', cas: current.modifyIndex, entry: next };
}

/** The entry without what Consul computes itself (indexes, hash): every other field, foreign ones included, is kept. */
function writableEntry(entry: Json): Json {
  return omit(entry, ['CreateIndex', 'ModifyIndex', 'Hash']);
}

/** A source without Consul's read-only fields (Precedence is recomputed on every write; Legacy* are cleared). */
function writableSource(src: Json): Json {
  return omit(src, ['Precedence', 'LegacyID', 'LegacyCreateTime', 'LegacyUpdateTime']);
}

function omit(obj: Json, keys: readonly string[]): Json {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

function sourcesOf(entry: Json): Json[] {
  return Array.isArray(entry.Sources) ? (entry.Sources as unknown[]).filter(isJsonObject) : [];
}

function metaOf(entry: Json): Record<string, string> {
  const meta = isJsonObject(entry.Meta) ? entry.Meta : {};
  return Object.fromEntries(Object.entries(meta).filter((kv): kv is [string, string] => typeof kv[1] === 'string'));
}

/** A source's name when it is a plain (not peered, not sameness-group) source, the only kind lambda-mesh writes. */
function plainName(src: Json): string | undefined {
  if (typeof src.Name !== 'string' || !isZeroValue(src.Peer) || !isZeroValue(src.SamenessGroup)) {
    return undefined;
  }
  return src.Name;
}

function scopeOf(entry: ConsulConfigEntry | Json): Json {
  const scope: Json = {};
  for (const key of ['Namespace', 'Partition'] as const) {
    const value = (entry as Json)[key];
    if (typeof value === 'string' && value !== '' && value !== 'default') {
      scope[key] = value;
    }
  }
  return scope;
}

/** Whether two sources mean the same, as Consul stores them (defaults, read-only fields and empty values aside). */
function sameSource(a: Json, b: Json, scope: Json): boolean {
  return canonicalJson(canonicalSource(a, scope)) === canonicalJson(canonicalSource(b, scope));
}

function canonicalSource(src: Json, scope: Json): Json {
  const out = writableSource(src);
  if (out.Type === 'consul') {
    delete out.Type;
  }
  // Consul gives a source the destination's namespace and partition when it has none.
  for (const key of ['Namespace', 'Partition'] as const) {
    if (out[key] === undefined || out[key] === 'default' || out[key] === scope[key]) {
      delete out[key];
    }
  }
  return out;
}

/** Whether the current entry already is `next` (so no PUT is needed). */
function sameEntry(current: Json, next: Json): boolean {
  const normalize = (entry: Json): Json => {
    const e = writableEntry(entry);
    const scope = scopeOf(e);
    for (const key of ['Namespace', 'Partition'] as const) {
      if (e[key] === 'default') {
        delete e[key];
      }
    }
    if (Array.isArray(e.Sources)) {
      e.Sources = sourcesOf(e)
        .map((s) => canonicalSource(s, scope))
        .sort((x, y) => (canonicalJson(x) < canonicalJson(y) ? -1 : 1));
    }
    return e;
  };
  return canonicalJson(normalize(current)) === canonicalJson(normalize(next));
}

function isDefaults(e: ConsulConfigEntry): e is ServiceDefaultsConfigEntry {
  return e.Kind === 'service-defaults';
}

function keyOf(e: ConsulConfigEntry): string {
  return `${e.Kind}/${e.Name}`;
}

function conflict(name: string, whose: string): Error {
  return new Error(
    `source ${JSON.stringify(name)} is already in the entry with different rules, ${whose}. lambda-mesh never overwrites another writer's intention: remove one of the two, or make them identical.`,
  );
}

function describeBody(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body) ?? '(empty)';
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

// ---------------------------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------------------------

/** Validates the resource properties: `Owner`, and `Entries` (JSON) or `EntriesGzip` (base64 of gzipped JSON). */
export function parseProperties(raw: Readonly<Record<string, unknown>> | undefined): IntentionsProperties {
  const owner = raw?.Owner;
  if (typeof owner !== 'string' || owner.trim() === '' || Buffer.byteLength(owner) > META_VALUE_MAX_BYTES) {
    throw new Error(`Owner must be a non-empty string of at most ${META_VALUE_MAX_BYTES} bytes, got ${JSON.stringify(owner)}`);
  }
  let text: string;
  if (typeof raw?.Entries === 'string') {
    text = raw.Entries;
  } else if (typeof raw?.EntriesGzip === 'string') {
    try {
      text = gunzipSync(Buffer.from(raw.EntriesGzip, 'base64')).toString('utf8');
    } catch (e) {
      throw new Error(`EntriesGzip is not base64 of gzipped JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  } else {
    throw new Error('Entries (a JSON array of config entries) or EntriesGzip must be given');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`Entries is not JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!Array.isArray(parsed)) {
    throw new Error('Entries must be a JSON array of config entries');
  }
  const seen = new Set<string>();
  const entries = parsed.map((e, i): ConsulConfigEntry => {
    if (!isJsonObject(e) || typeof e.Name !== 'string' || e.Name === '') {
      throw new Error(`Entries[${i}] must be a config entry with a Name`);
    }
    const key = `${String(e.Kind)}/${e.Name}`;
    if (seen.has(key)) {
      throw new Error(`Entries[${i}]: ${e.Kind as string} ${JSON.stringify(e.Name)} is given twice`);
    }
    seen.add(key);
    if (e.Kind === 'service-intentions') {
      if (!Array.isArray(e.Sources) || e.Sources.length === 0 || !e.Sources.every((s) => isJsonObject(s) && typeof s.Name === 'string' && s.Name !== '')) {
        throw new Error(`Entries[${i}] (service-intentions ${JSON.stringify(e.Name)}) must have Sources, each with a Name`);
      }
      if (new Set(e.Sources.map((s) => (s as Json).Name)).size !== e.Sources.length) {
        throw new Error(`Entries[${i}] (service-intentions ${JSON.stringify(e.Name)}) names a source twice`);
      }
      if (Object.keys(metaOf(e)).some((k) => !k.startsWith(META_PREFIX))) {
        throw new Error(`Entries[${i}] (service-intentions ${JSON.stringify(e.Name)}) has Meta other than lambda-mesh's`);
      }
      return e as unknown as ServiceIntentionsConfigEntry;
    }
    if (e.Kind === 'service-defaults') {
      if (typeof e.Protocol !== 'string' || !['tcp', 'http', 'http2', 'grpc'].includes(e.Protocol)) {
        throw new Error(`Entries[${i}] (service-defaults ${JSON.stringify(e.Name)}) must have a Protocol of tcp, http, http2 or grpc`);
      }
      return e as unknown as ServiceDefaultsConfigEntry;
    }
    throw new Error(`Entries[${i}]: Kind must be service-intentions or service-defaults, got ${JSON.stringify(e.Kind)}`);
  });
  return { owner, entries };
}

function tryParse(raw: Readonly<Record<string, unknown>> | undefined): IntentionsProperties | undefined {
  try {
    return parseProperties(raw);
  } catch {
    return undefined;
  }
}
