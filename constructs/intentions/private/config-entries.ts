/**
 * Renders the mesh's rules as Consul config entries, with Consul's own JSON field names, and defines how an entry
 * records which of its parts lambda-mesh wrote (its `Meta`), which the intentions handler reads to merge.
 *
 * Limits checked here are Consul's, from its source (agent/structs):
 * - `Meta`: at most 64 pairs, keys up to 128 bytes, values up to 512 bytes (`validateConfigEntryMeta`, `metaMaxKeyPairs`,
 *   `metaKeyMaxLength`, `metaValueMaxLength` in agent/structs/structs.go and config_entry.go);
 * - a source's `Description`: up to 512 bytes (`Sources[%d].Description exceeds maximum length`, config_entry_intentions.go);
 * - a service name: up to 63 bytes, a DNS label (agent.go warns "will not be discoverable via DNS due to it being too
 *   long"; the name is also a label of the mesh's SNI names `<service>.<ns>.<dc>.internal.<trust domain>`);
 * - an entry's size: Consul checks none at `PUT /v1/config`, but the entry becomes one Raft log entry, and
 *   hashicorp/raft documents 512 KiB (`SuggestedMaxDataSize`) as the size beyond which applying it "risks RPC IO
 *   taking too long and preventing timely heartbeat signals" (leadership instability); Consul applies the same bound
 *   to KV values and transactions (`kv_max_value_size`, `txn_max_req_len`, default 512 KiB). 512 KiB is the limit.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-defaults
 * @see https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size
 * @see https://github.com/hashicorp/raft/blob/main/api.go (SuggestedMaxDataSize)
 */
import * as crypto from 'crypto';
import { describeValue, LambdaMeshError } from '../../core/errors';
import { compare } from '../../core/names';
import { type HttpMatch, type MeshGraph, type ResolvedRule, RuleAction, ServiceProtocol } from '../../mesh/types';

/** The largest config entry lambda-mesh writes, in bytes of JSON: raft's suggested maximum log entry (512 KiB). */
export const CONFIG_ENTRY_MAX_BYTES = 512 * 1024;
/** Consul's `metaMaxKeyPairs`: the most `Meta` pairs a config entry may have. */
export const META_MAX_PAIRS = 64;
/** Consul's `metaKeyMaxLength`, in bytes. */
export const META_KEY_MAX_BYTES = 128;
/** Consul's `metaValueMaxLength`, in bytes: also the limit of a source's `Description`. */
export const META_VALUE_MAX_BYTES = 512;
/** The longest service name Consul can serve over DNS and in SNI names: a DNS label. */
export const SERVICE_NAME_MAX_BYTES = 63;

/** Whether a rule allows or denies, in Consul's spelling. */
export type IntentionAction = 'allow' | 'deny';

/** One header match of an L7 permission (`Sources[].Permissions[].HTTP.Header[]`): exactly one matcher. */
export interface IntentionHttpHeaderMatch {
  readonly Name: string;
  readonly Present?: boolean;
  readonly Exact?: string;
  readonly Prefix?: string;
  readonly Suffix?: string;
  readonly Regex?: string;
  readonly Invert?: boolean;
}

/** The HTTP match of an L7 permission (`Sources[].Permissions[].HTTP`): at most one path matcher. */
export interface IntentionHttpPermission {
  readonly PathExact?: string;
  readonly PathPrefix?: string;
  readonly PathRegex?: string;
  readonly Methods?: readonly string[];
  readonly Header?: readonly IntentionHttpHeaderMatch[];
}

/** An L7 permission: evaluated in order, first match wins. */
export interface IntentionPermission {
  readonly Action: IntentionAction;
  readonly HTTP: IntentionHttpPermission;
}

/** One source of a `service-intentions` entry: `Action` (L4) or `Permissions` (L7), never both. */
export interface SourceIntention {
  readonly Name: string;
  /** Consul Enterprise only; omitted for the default namespace (Consul CE rejects the key). */
  readonly Namespace?: string;
  /** Consul Enterprise only; omitted for the default partition. */
  readonly Partition?: string;
  readonly Action?: IntentionAction;
  readonly Permissions?: readonly IntentionPermission[];
  readonly Description?: string;
}

/** A `service-intentions` config entry: every source allowed or denied to reach one destination. */
export interface ServiceIntentionsConfigEntry {
  readonly Kind: 'service-intentions';
  readonly Name: string;
  readonly Namespace?: string;
  readonly Partition?: string;
  readonly Sources: readonly SourceIntention[];
  readonly Meta?: Readonly<Record<string, string>>;
}

/** A `service-defaults` config entry, as lambda-mesh writes it: the protocol only. */
export interface ServiceDefaultsConfigEntry {
  readonly Kind: 'service-defaults';
  readonly Name: string;
  readonly Namespace?: string;
  readonly Partition?: string;
  readonly Protocol: ServiceProtocol;
  readonly Meta?: Readonly<Record<string, string>>;
}

/** A config entry lambda-mesh writes. */
export type ConsulConfigEntry = ServiceIntentionsConfigEntry | ServiceDefaultsConfigEntry;

/** Options of {@link renderConfigEntries}. */
export interface RenderOptions {
  /** Add the `* -> *` deny entry. */
  readonly catchAllDeny: boolean;
  /** Who writes the entries: recorded in their `Meta`, so the handler can tell its sources from others'. */
  readonly owner: string;
}

const LOCATION = 'MeshIntentions';
const ALL = '*';

/**
 * Renders the config entries for a mesh: a `service-defaults` entry (the protocol) for every HTTP, HTTP2 or gRPC
 * destination, then one `service-intentions` entry per destination, then the catch-all deny. Deterministic: the
 * graph is sorted, and so is everything derived from it.
 *
 * Throws a {@link LambdaMeshError} (location `MeshIntentions`, field `intentions[<destination>]`) for what Consul
 * would refuse or mishandle: a name longer than a service name may be, a description over 512 bytes, ownership
 * metadata over Consul's limits, an entry over 512 KiB.
 */
export function renderConfigEntries(graph: MeshGraph, options: RenderOptions): ConsulConfigEntry[] {
  checkOwner(options.owner);
  const scope = enterpriseMeta(graph);
  const byDestination = new Map<string, ResolvedRule[]>();
  for (const rule of graph.rules) {
    const list = byDestination.get(rule.destination) ?? [];
    list.push(rule);
    byDestination.set(rule.destination, list);
  }
  const destinations = [...byDestination.keys()].sort(compare);

  const defaults: ServiceDefaultsConfigEntry[] = [];
  const intentions: ServiceIntentionsConfigEntry[] = [];
  for (const destination of destinations) {
    const rules = byDestination.get(destination)!;
    checkName(destination, destination, 'destination');
    const protocol = rules[0].protocol;
    if (protocol !== ServiceProtocol.TCP) {
      // L7 permissions apply only to services whose protocol is HTTP-based; tcp is Consul's default.
      defaults.push(checked({ Kind: 'service-defaults', Name: destination, ...scope, Protocol: protocol, Meta: protocolOwnershipMeta(options.owner, protocol) }));
    }
    const sources = renderSources(destination, rules, scope);
    intentions.push(checked({ Kind: 'service-intentions', Name: destination, ...scope, Sources: sources, Meta: sourceOwnershipMeta(options.owner, sources.map((s) => s.Name)) }));
  }
  const entries: ConsulConfigEntry[] = [...defaults, ...intentions];
  if (options.catchAllDeny) {
    const sources: SourceIntention[] = [{ Name: ALL, ...scope, Action: 'deny', Description: 'lambda-mesh: deny everything the mesh does not allow' }];
    entries.push(checked({ Kind: 'service-intentions', Name: ALL, ...scope, Sources: sources, Meta: sourceOwnershipMeta(options.owner, [ALL]) }));
  }
  return entries;
}

/** One source per identity, in graph order; L4 rules become `Action`, L7 rules `Permissions` (denies first). */
function renderSources(destination: string, rules: readonly ResolvedRule[], scope: EnterpriseScope): SourceIntention[] {
  const bySource = new Map<string, ResolvedRule[]>();
  for (const rule of rules) {
    const list = bySource.get(rule.source) ?? [];
    list.push(rule);
    bySource.set(rule.source, list);
  }
  return [...bySource.keys()].sort(compare).map((source) => {
    checkName(destination, source, 'source');
    const pair = bySource.get(source)!;
    const l4 = pair.filter((r) => r.http === undefined);
    const l7 = pair.filter((r) => r.http !== undefined);
    if (l4.length > 1 || (l4.length === 1 && l7.length > 0)) {
      throw fail(destination, pair.map((r) => `${r.action} ${r.http ? 'http' : 'L4'}`), `for source '${source}', one whole-connection (L4) rule or HTTP (L7) rules, not both (Consul takes one Action or a list of Permissions per source)`);
    }
    const description = describe(destination, source, pair);
    if (l4.length === 1) {
      return { Name: source, ...scope, Action: l4[0].action, ...(description !== undefined ? { Description: description } : {}) };
    }
    // Consul evaluates permissions in order and the first match wins: denies first, each kind in graph order.
    const ordered = [...l7.filter((r) => r.action === RuleAction.DENY), ...l7.filter((r) => r.action === RuleAction.ALLOW)];
    const permissions: IntentionPermission[] = ordered.map((r) => ({ Action: r.action, HTTP: renderHttp(r.http!) }));
    return { Name: source, ...scope, Permissions: permissions, ...(description !== undefined ? { Description: description } : {}) };
  });
}

function renderHttp(m: HttpMatch): IntentionHttpPermission {
  return {
    ...(m.pathExact !== undefined ? { PathExact: m.pathExact } : {}),
    ...(m.pathPrefix !== undefined ? { PathPrefix: m.pathPrefix } : {}),
    ...(m.pathRegex !== undefined ? { PathRegex: m.pathRegex } : {}),
    ...(m.methods !== undefined ? { Methods: [...m.methods] } : {}),
    ...(m.headers !== undefined
      ? {
        Header: m.headers.map((h) => ({
          Name: h.name,
          ...(h.present === true ? { Present: true } : {}),
          ...(h.exact !== undefined ? { Exact: h.exact } : {}),
          ...(h.prefix !== undefined ? { Prefix: h.prefix } : {}),
          ...(h.suffix !== undefined ? { Suffix: h.suffix } : {}),
          ...(h.regex !== undefined ? { Regex: h.regex } : {}),
          ...(h.invert === true ? { Invert: true } : {}),
        })),
      }
      : {}),
  };
}

/** The rules' descriptions, each once, joined: Consul has one Description per source. */
function describe(destination: string, source: string, rules: readonly ResolvedRule[]): string | undefined {
  const texts = [...new Set(rules.map((r) => r.description).filter((d): d is string => d !== undefined && d.trim() !== ''))];
  if (texts.length === 0) {
    return undefined;
  }
  const description = texts.join('; ');
  if (Buffer.byteLength(description) > META_VALUE_MAX_BYTES) {
    throw fail(destination, description, `descriptions of the rules from '${source}' of at most ${META_VALUE_MAX_BYTES} bytes together (Consul's limit for an intention's Description; given ${Buffer.byteLength(description)})`);
  }
  return description;
}

interface EnterpriseScope {
  readonly Namespace?: string;
  readonly Partition?: string;
}

/** Namespace and partition only when not `default`: Consul CE refuses the keys, and `default` is implied. */
function enterpriseMeta(graph: MeshGraph): EnterpriseScope {
  return {
    ...(graph.namespace !== '' && graph.namespace !== 'default' ? { Namespace: graph.namespace } : {}),
    ...(graph.partition !== '' && graph.partition !== 'default' ? { Partition: graph.partition } : {}),
  };
}

function checkName(destination: string, name: string, role: 'source' | 'destination'): void {
  if (typeof name !== 'string' || name === '' || name.includes('*')) {
    throw fail(destination, name, `a ${role} name without '*' (Consul allows a wildcard only as the whole name)`);
  }
  if (Buffer.byteLength(name) > SERVICE_NAME_MAX_BYTES) {
    throw fail(destination, name, `a ${role} name of at most ${SERVICE_NAME_MAX_BYTES} bytes, as Consul serves service names (a DNS label, also part of the mesh's SNI names); given ${Buffer.byteLength(name)}`);
  }
}

function checkOwner(owner: string): void {
  if (typeof owner !== 'string' || owner.trim() === '' || Buffer.byteLength(owner) > META_VALUE_MAX_BYTES) {
    throw new LambdaMeshError({ location: LOCATION, field: 'owner', given: describeValue(owner), expected: `a non-empty owner of at most ${META_VALUE_MAX_BYTES} bytes (it is stored as a Consul Meta value)` });
  }
}

/** Checks what Consul limits in a whole entry: its Meta and its size. */
function checked<T extends ConsulConfigEntry>(entry: T): T {
  const problem = metaProblem(entry.Meta ?? {});
  if (problem !== undefined) {
    throw fail(entry.Name, `${Object.keys(entry.Meta ?? {}).length} Meta pairs`, `${problem}: fewer source identities for this destination, or shorter identity names (each owner records its sources' names in the entry's Meta, 512 bytes a value, and all owners share one entry, so splitting the rules over several MeshIntentions does not help)`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(entry));
  if (bytes > CONFIG_ENTRY_MAX_BYTES) {
    throw fail(entry.Name, `a ${entry.Kind} entry of ${bytes} bytes`, `at most ${CONFIG_ENTRY_MAX_BYTES} bytes (512 KiB: raft's suggested maximum log entry, which Consul applies to KV values and transactions too): fewer sources or L7 permissions for this destination`);
  }
  return entry;
}

/** What is wrong with a Meta map by Consul's limits, or undefined. */
export function metaProblem(meta: Readonly<Record<string, string>>): string | undefined {
  const pairs = Object.keys(meta).length;
  if (pairs > META_MAX_PAIRS) {
    return `at most ${META_MAX_PAIRS} Meta pairs (Consul's limit; this entry needs ${pairs})`;
  }
  for (const [k, v] of Object.entries(meta)) {
    if (Buffer.byteLength(k) > META_KEY_MAX_BYTES) {
      return `Meta keys of at most ${META_KEY_MAX_BYTES} bytes (${JSON.stringify(k)} has ${Buffer.byteLength(k)})`;
    }
    if (Buffer.byteLength(v) > META_VALUE_MAX_BYTES) {
      return `Meta values of at most ${META_VALUE_MAX_BYTES} bytes (${JSON.stringify(k)} has ${Buffer.byteLength(v)})`;
    }
  }
  return undefined;
}

function fail(destination: string, given: unknown, expected: string): LambdaMeshError {
  return new LambdaMeshError({ location: LOCATION, field: `intentions[${destination}]`, given: describeValue(given), expected });
}

// ---------------------------------------------------------------------------------------------------------------
// Ownership in Meta.
//
// Several writers (MeshIntentions in several stacks or apps, an operator, another tool) may add sources to the same
// destination's entry, so the entry records, per lambda-mesh owner, which sources that owner wrote:
//
//   lambda-mesh-owner-<id>        the owner, in full (readable; <id> is a hash of it, as Meta keys are limited)
//   lambda-mesh-sources-<id>      the source names it wrote, comma-separated, sorted (a Meta value holds 512 bytes:
//   lambda-mesh-sources-<id>-2    longer lists continue in numbered keys)
//
// and on a service-defaults entry, the protocol each owner needs, and what the protocol was before lambda-mesh set it:
//
//   lambda-mesh-owner-<id>, lambda-mesh-protocol-<id>, lambda-mesh-previous-protocol
//
// A source no owner lists belongs to someone else, and lambda-mesh never changes or removes it.
// ---------------------------------------------------------------------------------------------------------------

/** Every Meta key lambda-mesh writes starts with this. */
export const META_PREFIX = 'lambda-mesh-';
const OWNER_KEY = 'lambda-mesh-owner-';
const SOURCES_KEY = 'lambda-mesh-sources-';
const PROTOCOL_KEY = 'lambda-mesh-protocol-';
/** On a service-defaults entry lambda-mesh did not create: its Protocol before (empty when it had none). */
export const PREVIOUS_PROTOCOL_KEY = 'lambda-mesh-previous-protocol';

/** The short, stable id of an owner in Meta keys: 12 hex digits of its SHA-256. */
export function ownerId(owner: string): string {
  return crypto.createHash('sha256').update(owner, 'utf8').digest('hex').slice(0, 12);
}

/** The Meta pairs that say `owner` wrote the sources `names` of a service-intentions entry (none when no names). */
export function sourceOwnershipMeta(owner: string, names: readonly string[]): Record<string, string> {
  if (names.length === 0) {
    return {};
  }
  const id = ownerId(owner);
  const meta: Record<string, string> = { [`${OWNER_KEY}${id}`]: owner };
  let chunk = '';
  let n = 1;
  const flush = (): void => {
    meta[n === 1 ? `${SOURCES_KEY}${id}` : `${SOURCES_KEY}${id}-${n}`] = chunk;
    n++;
    chunk = '';
  };
  for (const name of [...new Set(names)].sort(compare)) {
    const next = chunk === '' ? name : `${chunk},${name}`;
    if (Buffer.byteLength(next) > META_VALUE_MAX_BYTES && chunk !== '') {
      flush();
      chunk = name;
    } else {
      chunk = next;
    }
  }
  flush();
  return meta;
}

/** The Meta pairs that say `owner` needs `protocol` on a service-defaults entry. */
export function protocolOwnershipMeta(owner: string, protocol: string): Record<string, string> {
  const id = ownerId(owner);
  return { [`${OWNER_KEY}${id}`]: owner, [`${PROTOCOL_KEY}${id}`]: protocol };
}

/** What one lambda-mesh owner recorded in an entry's Meta. */
export interface OwnerClaim {
  /** The owner, when its `lambda-mesh-owner-<id>` pair is there. */
  readonly owner?: string;
  /** The source names it wrote (service-intentions). */
  readonly sources: ReadonlySet<string>;
  /** The protocol it needs (service-defaults). */
  readonly protocol?: string;
}

/** The claims recorded in an entry's Meta, by owner id. */
export function readOwnership(meta: Readonly<Record<string, unknown>> | undefined): Map<string, OwnerClaim> {
  const claims = new Map<string, { owner?: string; sources: Set<string>; protocol?: string }>();
  const claim = (id: string): { owner?: string; sources: Set<string>; protocol?: string } => {
    let c = claims.get(id);
    if (!c) {
      c = { sources: new Set() };
      claims.set(id, c);
    }
    return c;
  };
  for (const [key, value] of Object.entries(meta ?? {})) {
    if (typeof value !== 'string') {
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^lambda-mesh-owner-([0-9a-f]{12})$/.exec(key))) {
      claim(m[1]).owner = value;
    } else if ((m = /^lambda-mesh-sources-([0-9a-f]{12})(-\d+)?$/.exec(key))) {
      for (const name of value.split(',')) {
        if (name !== '') {
          claim(m[1]).sources.add(name);
        }
      }
    } else if ((m = /^lambda-mesh-protocol-([0-9a-f]{12})$/.exec(key))) {
      claim(m[1]).protocol = value;
    }
  }
  return claims;
}

/** `meta` without the pairs of owner `id` (every other pair kept). */
export function withoutOwner(meta: Readonly<Record<string, string>>, id: string): Record<string, string> {
  const mine = new RegExp(`^lambda-mesh-(owner|sources|protocol)-${id}(-\\d+)?$`);
  return Object.fromEntries(Object.entries(meta).filter(([k]) => !mine.test(k)));
}
