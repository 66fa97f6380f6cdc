import { Token } from 'aws-cdk-lib';
import { Construct, type IConstruct } from 'constructs';
import { describeValue, LambdaMeshError } from '../core/errors';
import { compare, DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../core/names';
import { describeHttpMatch, httpMatchKey, validateHttpMatch } from './private/http-match';
import {
  type HttpMatch,
  IdentityKind,
  type MeshGraph,
  type ResolvedIdentity,
  type ResolvedRule,
  type ResolvedService,
  RuleAction,
  type RuleOptions,
  ServicePlacement,
  ServiceProtocol,
} from './types';

/**
 * The port of the Lambda Runtime and Extensions APIs inside every execution environment: no upstream may bind it.
 * @see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
 */
const LAMBDA_RUNTIME_API_PORT = 9001;

/** Lambda code runs as an unprivileged user, which cannot bind ports below 1024. */
const LOWEST_UNPRIVILEGED_PORT = 1024;

/**
 * Names a service may not take: the mesh gateway registers under this name, and a service of that name could claim
 * the gateway's identity (its binding rule and certificates).
 */
const RESERVED_SERVICE_NAMES = new Set(['mesh-gateway']);

const DNS_LABEL_EXPECTED = `a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${DNS_1123_LABEL_MAX_LENGTH} characters)`;

/**
 * Something that can be the source of a rule: a service, a function (all its versions) or one function version.
 */
export interface IMeshSource {
  /** The mesh this source belongs to. */
  readonly mesh: IMesh;
  /** The name the source is referred to by: a service name, a function name, or an identity `<function>-<version>`. */
  readonly sourceName: string;
  /** The identity names this source stands for now (a function: one per version). */
  identityNames(): string[];
}

/**
 * A mesh: the single source of truth for identities and policy, shared by every other lambda-mesh construct.
 */
export interface IMesh extends IConstruct {
  /** The mesh name (a DNS-1123 label), used in resource names and parameter paths. */
  readonly meshName: string;
  /** The Consul datacenter. */
  readonly datacenter: string;
  /**
   * The SPIFFE trust domain, when pinned.
   * @default - the Consul CA's, read at deploy time
   */
  readonly trustDomain?: string;
  /** The Consul admin partition. */
  readonly partition: string;
  /** The Consul namespace. */
  readonly namespace: string;

  /** Returns the service with this name; throws a LambdaMeshError naming the known services if there is none. */
  service(name: string): MeshService;
  /** Returns the service with this name, or undefined. */
  tryFindService(name: string): MeshService | undefined;
  /** Declares a function of the mesh; add its versions with `addVersion` or `versions`. */
  addFunction(name: string, options?: FunctionOptions): FunctionDefinition;
  /** Returns the function with this name; throws a LambdaMeshError if there is none. */
  function(name: string): FunctionDefinition;
  /**
   * Claims the identity `<functionName>-<version>` for the construct at `claimant`, so that no second construct
   * runs as it too (one deployed function per identity). Declares the function and the version first when the
   * model does not declare them yet, as `addFunction` and `addVersion` would, and returns the version.
   * `MeshFunction` and `MeshPythonFunction` claim the identity they run as this way.
   *
   * Throws a LambdaMeshError when the function or version cannot be declared (see `addFunction`, `addVersion`:
   * e.g. not a DNS-1123 label, or the name of a service), or when another construct has claimed the identity.
   *
   * @param functionName the function of the mesh, e.g. `model-a`
   * @param version the version, e.g. `v1`
   * @param claimant the construct path of what runs as the identity (named in errors)
   */
  claimIdentity(functionName: string, version: string, claimant: string): FunctionVersion;
  /** The construct path that claimed the identity `<function>-<version>`, or undefined while none has. */
  identityClaimant(identityName: string): string | undefined;
  /** Returns the service, function or function version called `name`; throws a LambdaMeshError if there is none. */
  source(name: string): IMeshSource;
  /** Resolves the whole mesh; throws a LambdaMeshError if rules conflict. */
  graph(): MeshGraph;
  /** The services that `identity` may call (at least one allow rule), by name. */
  upstreamsOf(identity: string): ResolvedService[];
}

/**
 * Properties of a {@link Mesh}.
 */
export interface MeshProps {
  /**
   * The mesh name, used in resource names and parameter paths (a DNS-1123 label).
   * @default - the construct id, lower-cased
   */
  readonly meshName?: string;
  /**
   * The Consul datacenter the mesh lives in. Every part of lambda-mesh reads it from here, so the servers, the
   * SNI names and the SPIFFE IDs cannot disagree.
   * @default 'dc1'
   */
  readonly datacenter?: string;
  /**
   * The SPIFFE trust domain of the mesh's identities, when you pin it. Consul's built-in CA names its trust
   * domain `<cluster-id>.consul`; the identity bundle carries it to functions at deploy time.
   * @default - the Consul CA's, read at deploy time
   */
  readonly trustDomain?: string;
  /**
   * The Consul admin partition.
   * @default 'default'
   */
  readonly partition?: string;
  /**
   * The Consul namespace of the mesh's services and functions.
   * @default 'default'
   */
  readonly namespace?: string;
}

/**
 * Attributes of a mesh defined in another stack or app, for {@link Mesh.fromMeshAttributes}.
 */
export interface MeshAttributes {
  /** The mesh name. */
  readonly meshName: string;
  /**
   * The Consul datacenter.
   * @default 'dc1'
   */
  readonly datacenter?: string;
  /**
   * The SPIFFE trust domain.
   * @default - the Consul CA's, read at deploy time
   */
  readonly trustDomain?: string;
  /**
   * The Consul admin partition.
   * @default 'default'
   */
  readonly partition?: string;
  /**
   * The Consul namespace.
   * @default 'default'
   */
  readonly namespace?: string;
  /**
   * The services of that mesh this app refers to (as rule destinations or function upstreams).
   * @default - none
   */
  readonly services?: ImportedServiceAttributes[];
}

/**
 * A service declared in another stack or app.
 */
export interface ImportedServiceAttributes extends ServiceOptions {
  /** The service name. */
  readonly name: string;
}

/**
 * Options for a service of the mesh.
 */
export interface ServiceOptions {
  /** The port the service listens on (1-65535). */
  readonly port: number;
  /**
   * The application protocol. HTTP rules need `HTTP`, `HTTP2` or `GRPC`.
   * @default ServiceProtocol.TCP
   */
  readonly protocol?: ServiceProtocol;
  /**
   * The port on 127.0.0.1 at which functions reach this service through their mesh proxy. It must be unique in
   * the mesh (a function may call several services), at least 1024 (Lambda code is unprivileged), and not 9001
   * (the Lambda Runtime API).
   * @default - the same as `port`
   */
  readonly localPort?: number;
  /**
   * Where the service runs: it decides which construct puts it into the mesh (`MeshEcsService`,
   * `MeshEc2Service`, `MeshKubernetesService`) and which Consul auth method its instances log in with.
   * @default ServicePlacement.EXTERNAL - its owner registers it; lambda-mesh gives it a binding rule only
   */
  readonly placement?: ServicePlacement;
  /**
   * What the service is for.
   * @default - no description
   */
  readonly description?: string;
}

/**
 * Options for a function of the mesh.
 */
export interface FunctionOptions {
  /**
   * Versions to add now, e.g. `['v1', 'v2']`. Each becomes an identity `<function>-<version>`.
   * @default - none; add them with `addVersion`
   */
  readonly versions?: string[];
  /**
   * What the function is for.
   * @default - no description
   */
  readonly description?: string;
}

interface RuleRecord {
  readonly source: IMeshSource;
  readonly destination: MeshService;
  readonly action: RuleAction;
  readonly http?: HttpMatch;
  readonly description?: string;
  /** How the rule was declared, for messages: `feature-store.allowFrom(model-a)`. */
  readonly label: string;
}

/**
 * A backend service of the mesh (feature store, log service, ...): a rule destination and an identity.
 */
export class MeshService implements IMeshSource {
  /** The service name, which is also its identity. */
  public readonly name: string;
  /** The port the service listens on. */
  public readonly port: number;
  /** The port on 127.0.0.1 at which functions reach it through their proxy. */
  public readonly localPort: number;
  /** The application protocol. */
  public readonly protocol: ServiceProtocol;
  /** True when declared in another stack or app and referenced here. */
  public readonly imported: boolean;
  /** Where the service runs. */
  public readonly placement: ServicePlacement;
  /**
   * What the service is for.
   * @default - no description
   */
  public readonly description?: string;

  /** The mesh the service belongs to. */
  public readonly mesh: IMesh;
  private readonly owner: MeshBase;

  /** @internal */
  constructor(owner: MeshBase, name: string, options: ServiceOptions, imported: boolean) {
    this.mesh = owner;
    this.owner = owner;
    this.name = name;
    this.port = options.port;
    this.protocol = options.protocol ?? ServiceProtocol.TCP;
    this.localPort = options.localPort ?? options.port;
    this.imported = imported;
    this.placement = options.placement ?? ServicePlacement.EXTERNAL;
    this.description = options.description;
  }

  /**
   * Records that the construct at `path` runs this service's workload, so that no second construct runs it too
   * (two ECS services registering as one Consul service would split its traffic between unrelated code).
   * Throws a LambdaMeshError when the placement differs or another construct runs it already.
   *
   * @param path the construct path of the workload (named in errors)
   * @param placement where that construct runs it
   */
  public claimWorkload(path: string, placement: ServicePlacement): void {
    this.owner._claimWorkload(this, path, placement);
  }

  /** The construct path of the workload that runs this service, or undefined while none has claimed it. */
  public get workloadPath(): string | undefined {
    return this.owner._workloadOf(this.name);
  }

  /** The service name. */
  public get sourceName(): string {
    return this.name;
  }

  /** A service stands for one identity: itself. */
  public identityNames(): string[] {
    return [this.name];
  }

  /**
   * Allows `source` to call this service: whole connections (L4), or only matching HTTP requests (L7) with `http`.
   *
   * @example featureStore.allowFrom(modelA, { http: { pathPrefix: '/features', methods: ['GET'] } });
   */
  public allowFrom(source: IMeshSource, options: RuleOptions = {}): void {
    this.owner._addRule(RuleAction.ALLOW, source, this, options);
  }

  /**
   * Denies `source` calls to this service. Everything not allowed is already denied; use this to carve an
   * exception out of a wider L7 allow for the same source (denies are evaluated first).
   */
  public denyFrom(source: IMeshSource, options: RuleOptions = {}): void {
    this.owner._addRule(RuleAction.DENY, source, this, options);
  }
}

/**
 * A function of the mesh (e.g. the model `model-a`); each of its versions is an identity. As a rule source it
 * stands for all its versions, including ones added later.
 */
export class FunctionDefinition implements IMeshSource {
  /**
   * What the function is for.
   * @default - no description
   */
  public readonly description?: string;
  /** The mesh the function belongs to. */
  public readonly mesh: IMesh;
  /** The function name (a DNS-1123 label). */
  public readonly name: string;
  private readonly owner: MeshBase;
  private readonly _versions = new Map<string, FunctionVersion>();

  /** @internal */
  constructor(owner: MeshBase, name: string, description: string | undefined) {
    this.mesh = owner;
    this.owner = owner;
    this.name = name;
    this.description = description;
  }

  /** The function name. */
  public get sourceName(): string {
    return this.name;
  }

  /** The versions declared so far, in the order they were added. */
  public get versions(): FunctionVersion[] {
    return [...this._versions.values()];
  }

  /** One identity per version. */
  public identityNames(): string[] {
    return this.versions.map((v) => v.identityName);
  }

  /** Adds a version (a DNS-1123 label such as `v1`); its identity is `<function>-<version>`. */
  public addVersion(version: string): FunctionVersion {
    const field = `addFunction(${this.name}).addVersion(${describeValue(version)})`;
    if (typeof version !== 'string' || Token.isUnresolved(version) || !DNS_1123_LABEL.test(version)) {
      throw this.owner._error(field, version, `a version that is a DNS-1123 label, e.g. 'v1' (lower-case letters, digits and '-'; no dots or upper case)`);
    }
    if (this._versions.has(version)) {
      throw this.owner._error(field, version, `a version not already declared for function '${this.name}' (declared: ${[...this._versions.keys()].join(', ')})`);
    }
    const identity = `${this.name}-${version}`;
    if (identity.length > DNS_1123_LABEL_MAX_LENGTH) {
      throw this.owner._error(field, version, `a version short enough that the identity '${identity}' (${identity.length} characters) is at most ${DNS_1123_LABEL_MAX_LENGTH} characters`);
    }
    this.owner._claimName(field, identity, `version '${version}' of function '${this.name}'`);
    const v = new FunctionVersion(this, version);
    this._versions.set(version, v);
    return v;
  }

  /** Returns the version; throws a LambdaMeshError naming the declared versions if there is none. */
  public version(version: string): FunctionVersion {
    const v = this._versions.get(version);
    if (!v) {
      throw this.owner._error(`function(${this.name}).version`, version, `one of the declared versions: ${[...this._versions.keys()].join(', ') || '(none)'}`);
    }
    return v;
  }
}

/**
 * One version of a mesh function: the identity `<function>-<version>` a deployed Lambda function runs as.
 */
export class FunctionVersion implements IMeshSource {
  /** The identity name, `<function>-<version>` (e.g. `model-a-v1`). */
  public readonly identityName: string;

  /** The mesh the version belongs to. */
  public readonly mesh: IMesh;
  /** The function this is a version of. */
  public readonly fn: FunctionDefinition;
  /** The version label (e.g. `v1`). */
  public readonly version: string;

  /** @internal */
  constructor(fn: FunctionDefinition, version: string) {
    this.mesh = fn.mesh;
    this.fn = fn;
    this.version = version;
    this.identityName = `${fn.name}-${version}`;
  }

  /** The identity name. */
  public get sourceName(): string {
    return this.identityName;
  }

  /** A version stands for one identity: itself. */
  public identityNames(): string[] {
    return [this.identityName];
  }
}

/**
 * What {@link Mesh} and meshes referenced with {@link Mesh.fromMeshAttributes} share: the model, its
 * validation and its resolution.
 */
export abstract class MeshBase extends Construct implements IMesh {
  public readonly meshName: string;
  public readonly datacenter: string;
  public readonly trustDomain?: string;
  public readonly partition: string;
  public readonly namespace: string;

  private readonly services = new Map<string, MeshService>();
  private readonly functions = new Map<string, FunctionDefinition>();
  /** Every name a rule may refer to (services, functions, function versions), with what owns it. */
  private readonly names = new Map<string, string>();
  private readonly rules: RuleRecord[] = [];
  /** The construct that runs each service's workload, by service name. */
  private readonly workloads = new Map<string, string>();
  /** The construct that runs as each function version's identity, by identity name. */
  private readonly identityClaims = new Map<string, string>();
  /** The resolved graph and upstreams by identity; dropped by every change to the model. */
  private resolved?: { readonly graph: MeshGraph; readonly upstreams: Map<string, ResolvedService[]> };

  /**
   * @param meshName the mesh name, and whether it was given (else it came from the construct id)
   */
  protected constructor(scope: Construct, id: string, meshName: { readonly value: string; readonly given: boolean }, props: MeshProps) {
    super(scope, id);
    const labels: Array<[string, string]> = [
      [meshName.given ? 'meshName' : 'meshName (defaults to the construct id, lower-cased)', meshName.value],
      ['datacenter', props.datacenter ?? 'dc1'],
      ['partition', props.partition ?? 'default'],
      ['namespace', props.namespace ?? 'default'],
    ];
    for (const [field, value] of labels) {
      if (typeof value !== 'string' || Token.isUnresolved(value) || value.length > DNS_1123_LABEL_MAX_LENGTH || !DNS_1123_LABEL.test(value)) {
        throw this._error(field, value, DNS_LABEL_EXPECTED);
      }
    }
    if (props.trustDomain !== undefined && !isDnsName(props.trustDomain)) {
      throw this._error('trustDomain', props.trustDomain, 'a DNS name of DNS-1123 labels separated by dots, e.g. 1d2b3c4e-0000-1111-2222-333344445555.consul');
    }
    [this.meshName, this.datacenter, this.partition, this.namespace] = labels.map(([, v]) => v);
    this.trustDomain = props.trustDomain;
    // Versions added after a rule change what the rule expands to: check again once everything is declared.
    this.node.addValidation({
      validate: () => {
        try {
          this.graph();
          return [];
        } catch (e) {
          if (LambdaMeshError.isLambdaMeshError(e)) {
            return [e.message];
          }
          throw e;
        }
      },
    });
  }

  public service(name: string): MeshService {
    const s = this.services.get(name);
    if (!s) {
      throw this._error('service', name, `the name of a service of mesh '${this.meshName}': ${this.knownList([...this.services.keys()])}`);
    }
    return s;
  }

  public tryFindService(name: string): MeshService | undefined {
    return this.services.get(name);
  }

  public addFunction(name: string, options: FunctionOptions = {}): FunctionDefinition {
    const field = `addFunction(${describeValue(name)})`;
    this.checkName(field, name);
    this._claimName(field, name, `function '${name}'`);
    const fn = new FunctionDefinition(this, name, options.description);
    this.functions.set(name, fn);
    for (const v of options.versions ?? []) {
      fn.addVersion(v);
    }
    return fn;
  }

  public function(name: string): FunctionDefinition {
    const fn = this.functions.get(name);
    if (!fn) {
      throw this._error('function', name, `the name of a function of mesh '${this.meshName}': ${this.knownList([...this.functions.keys()])}`);
    }
    return fn;
  }

  public claimIdentity(functionName: string, version: string, claimant: string): FunctionVersion {
    const identity = `${functionName}-${version}`;
    const previous = this.identityClaims.get(identity);
    if (previous !== undefined) {
      const field = `claimIdentity(${describeValue(functionName)}, ${describeValue(version)})`;
      const expected = `one construct per identity: the construct at ${previous} already runs as '${identity}'`;
      throw this._error(field, claimant, `${expected} (add a version instead)`);
    }
    const fn = this.functions.get(functionName) ?? this.addFunction(functionName);
    const claimed = fn.versions.find((v) => v.version === version) ?? fn.addVersion(version);
    this.identityClaims.set(identity, claimant);
    return claimed;
  }

  public identityClaimant(identityName: string): string | undefined {
    return this.identityClaims.get(identityName);
  }

  public source(name: string): IMeshSource {
    const found: IMeshSource | undefined =
      this.services.get(name) ??
      this.functions.get(name) ??
      [...this.functions.values()].flatMap((f) => f.versions).find((v) => v.identityName === name);
    if (!found) {
      throw this._error('source', name, `a service, function or function version (<function>-<version>) of mesh '${this.meshName}': ${this.knownList([...this.names.keys()])}`);
    }
    return found;
  }

  public graph(): MeshGraph {
    return this.resolve().graph;
  }

  public upstreamsOf(identity: string): ResolvedService[] {
    const { graph, upstreams } = this.resolve();
    const found = upstreams.get(identity);
    if (!found) {
      throw this._error('upstreamsOf', identity, `an identity of mesh '${this.meshName}': ${this.knownList(graph.identities.map((i) => i.name))}`);
    }
    return found;
  }

  /** @internal Drops the resolved graph: the next read resolves the model again. */
  public _invalidate(): void {
    this.resolved = undefined;
  }

  /**
   * Resolves the model once per change: every function asks for its upstreams, and with hundreds of
   * functions resolving per call would dominate synth time (see bench/mesh-model.ts).
   */
  private resolve(): { readonly graph: MeshGraph; readonly upstreams: Map<string, ResolvedService[]> } {
    if (this.resolved) {
      return this.resolved;
    }
    const graph = deepFreeze(this.computeGraph());
    const serviceByName = new Map(graph.services.map((s) => [s.name, s]));
    const allowed = new Map<string, Set<string>>(graph.identities.map((i) => [i.name, new Set()]));
    for (const r of graph.rules) {
      if (r.action === RuleAction.ALLOW) {
        allowed.get(r.source)!.add(r.destination);
      }
    }
    const upstreams = new Map<string, ResolvedService[]>();
    for (const [identity, destinations] of allowed) {
      upstreams.set(identity, Object.freeze([...destinations].sort(compare).map((d) => serviceByName.get(d)!)) as ResolvedService[]);
    }
    this.resolved = { graph, upstreams };
    return this.resolved;
  }

  private computeGraph(): MeshGraph {
    const byPair = new Map<string, RuleRecord[]>();
    for (const rule of this.rules) {
      for (const identity of rule.source.identityNames()) {
        const key = `${rule.destination.name}\u0000${identity}`;
        const existing = byPair.get(key) ?? [];
        for (const other of existing) {
          this.checkPair(identity, rule, other);
        }
        existing.push(rule);
        byPair.set(key, existing);
      }
    }

    const identities = this.identities();
    const kindOf = new Map(identities.map((i) => [i.name, i.kind]));
    const rules: ResolvedRule[] = [];
    for (const [key, records] of [...byPair.entries()].sort(([a], [b]) => compare(a, b))) {
      const source = key.split('\u0000')[1];
      const seen = new Set<string>();
      // Denies first: Consul evaluates a source's L7 permissions in order and the first match wins.
      const ordered = [...records.filter((r) => r.action === RuleAction.DENY), ...records.filter((r) => r.action === RuleAction.ALLOW)];
      for (const r of ordered) {
        const dedupe = `${r.action}:${httpMatchKey(r.http)}`;
        if (seen.has(dedupe)) {
          continue;
        }
        seen.add(dedupe);
        rules.push({
          source,
          sourceKind: kindOf.get(source)!,
          destination: r.destination.name,
          port: r.destination.port,
          protocol: r.destination.protocol,
          action: r.action,
          ...(r.http ? { http: r.http } : {}),
          ...(r.description !== undefined ? { description: r.description } : {}),
        });
      }
    }

    return {
      meshName: this.meshName,
      datacenter: this.datacenter,
      ...(this.trustDomain !== undefined ? { trustDomain: this.trustDomain } : {}),
      partition: this.partition,
      namespace: this.namespace,
      services: [...this.services.values()]
        .sort((a, b) => compare(a.name, b.name))
        .map((s) => ({
          name: s.name,
          port: s.port,
          localPort: s.localPort,
          protocol: s.protocol,
          imported: s.imported,
          placement: s.placement,
          ...(s.description !== undefined ? { description: s.description } : {}),
        })),
      identities,
      rules,
    };
  }

  /** @internal */
  public _addRule(action: RuleAction, source: IMeshSource, destination: MeshService, options: RuleOptions): void {
    const verb = action === RuleAction.ALLOW ? 'allowFrom' : 'denyFrom';
    const label = `${destination.name}.${verb}(${source?.sourceName ?? describeValue(source)})`;
    if (destination.mesh !== this) {
      throw this._error(label, destination.name, `a destination service of mesh '${this.meshName}' (it belongs to mesh '${destination.mesh.meshName}' at ${destination.mesh.node.path})`);
    }
    if (!source || typeof source.identityNames !== 'function') {
      throw this._error(label, source, 'a MeshService, FunctionDefinition or FunctionVersion');
    }
    if (source.mesh !== this) {
      throw this._error(`${label}.source`, source.sourceName, `a source of mesh '${this.meshName}' at ${this.node.path} (it belongs to mesh '${source.mesh.meshName}' at ${source.mesh.node.path}); declare it in this mesh, or reference this mesh with Mesh.fromMeshAttributes`);
    }
    if (source === destination) {
      throw this._error(`${label}.source`, source.sourceName, 'a source other than the destination itself (a service always reaches itself)');
    }
    let http: HttpMatch | undefined;
    if (options.http !== undefined) {
      if (destination.protocol === ServiceProtocol.TCP) {
        throw this._error(`${label}.http`, options.http, `no HTTP match: '${destination.name}' speaks ${destination.protocol}, and Consul applies L7 rules only to http, http2 and grpc services (set its protocol, or omit http for an L4 rule)`);
      }
      http = validateHttpMatch(this.node.path, `${label}.http`, options.http);
    }
    const record: RuleRecord = {
      source,
      destination,
      action,
      ...(http ? { http } : {}),
      ...(options.description !== undefined ? { description: options.description } : {}),
      label,
    };
    for (const other of this.rules) {
      if (other.destination !== destination) {
        continue;
      }
      if (other.source === source && other.action === action && httpMatchKey(other.http) === httpMatchKey(http)) {
        throw this._error(label, `${action} ${describeHttpMatch(http)}`, `a rule not already declared (${other.label} declares the same)`);
      }
      // A function without versions yet still conflicts with itself: compare by source too, not only by identity.
      const shared = other.source === source ? [source.identityNames()[0] ?? source.sourceName] : other.source.identityNames().filter((n) => source.identityNames().includes(n));
      if (shared.length > 0) {
        this.checkPair(shared[0], record, other);
      }
    }
    this.rules.push(record);
    this._invalidate();
  }

  /** @internal */
  public _claimWorkload(service: MeshService, path: string, placement: ServicePlacement): void {
    const field = `service(${service.name}).claimWorkload`;
    if (service.mesh !== this) {
      throw this._error(field, service.name, `a service of mesh '${this.meshName}' (it belongs to mesh '${service.mesh.meshName}')`);
    }
    if (service.imported) {
      throw this._error(field, service.name, 'a service declared in this app (an imported service is run by the app that declares it)');
    }
    if (service.placement !== placement) {
      throw this._error(`${field}.placement`, placement, `the service's placement, '${service.placement}' (declare it with placement: ServicePlacement.${placement.toUpperCase()} to run it as ${placement}), for the workload at ${path}`);
    }
    const previous = this.workloads.get(service.name);
    if (previous !== undefined) {
      throw this._error(field, path, `one workload per service: the construct at ${previous} already runs '${service.name}'`);
    }
    this.workloads.set(service.name, path);
  }

  /** @internal */
  public _workloadOf(name: string): string | undefined {
    return this.workloads.get(name);
  }

  /** @internal */
  public _claimName(field: string, name: string, owner: string): void {
    const previous = this.names.get(name);
    if (previous !== undefined) {
      throw this._error(field, name, `a name unique in mesh '${this.meshName}' across services, functions and function versions ('${name}' is already ${previous})`);
    }
    this.names.set(name, owner);
    this._invalidate();
  }

  /** @internal */
  public _error(field: string, given: unknown, expected: string): LambdaMeshError {
    return new LambdaMeshError({ location: this.node.path, field, given: describeValue(given), expected });
  }

  protected registerService(name: string, options: ServiceOptions, imported: boolean): MeshService {
    const field = `${imported ? 'services' : 'addService'}(${describeValue(name)})`;
    this.checkName(field, name);
    this.checkPort(`${field}.port`, options.port, 1, 'an integer port from 1 to 65535');
    if (RESERVED_SERVICE_NAMES.has(name)) {
      throw this._error(field, name, `a name other than ${[...RESERVED_SERVICE_NAMES].map((n) => `'${n}'`).join(', ')}, which the mesh gateway registers as`);
    }
    if (options.protocol !== undefined && !Object.values(ServiceProtocol).includes(options.protocol)) {
      throw this._error(`${field}.protocol`, options.protocol, `one of ${Object.values(ServiceProtocol).join(', ')}`);
    }
    if (options.placement !== undefined && !Object.values(ServicePlacement).includes(options.placement)) {
      throw this._error(`${field}.placement`, options.placement, `one of ${Object.values(ServicePlacement).join(', ')}`);
    }
    const localPort = options.localPort ?? options.port;
    const localField = options.localPort === undefined ? `${field}.localPort (defaults to port)` : `${field}.localPort`;
    this.checkPort(localField, localPort, LOWEST_UNPRIVILEGED_PORT, `an integer from ${LOWEST_UNPRIVILEGED_PORT} to 65535 (Lambda code cannot bind privileged ports; set localPort)`);
    if (localPort === LAMBDA_RUNTIME_API_PORT) {
      throw this._error(localField, localPort, `a port other than ${LAMBDA_RUNTIME_API_PORT}, which the Lambda Runtime API uses (set localPort)`);
    }
    const clash = [...this.services.values()].find((s) => s.localPort === localPort);
    if (clash) {
      throw this._error(localField, localPort, `a local port not used by another service of the mesh ('${clash.name}' already has ${localPort}; set localPort on one of them)`);
    }
    this._claimName(field, name, `service '${name}'`);
    const service = new MeshService(this, name, options, imported);
    this.services.set(name, service);
    return service;
  }

  private identities(): ResolvedIdentity[] {
    const services: ResolvedIdentity[] = [...this.services.values()].map((s) => ({ name: s.name, kind: IdentityKind.SERVICE }));
    const versions: ResolvedIdentity[] = [...this.functions.values()].flatMap((f) =>
      f.versions.map((v) => ({ name: v.identityName, kind: IdentityKind.FUNCTION_VERSION, functionName: f.name, version: v.version })),
    );
    return [...services, ...versions].sort((a, b) => compare(a.name, b.name));
  }

  /** Throws if two rules that both cover `identity` -> their destination contradict each other. */
  private checkPair(identity: string, a: RuleRecord, b: RuleRecord): void {
    const pair = `${identity} -> ${a.destination.name}`;
    const sameMatch = httpMatchKey(a.http) === httpMatchKey(b.http);
    if (a.action !== b.action && (sameMatch || a.http === undefined || b.http === undefined)) {
      throw this._error(a.label, `${a.action} ${describeHttpMatch(a.http)}`, `no conflicting rule: ${b.label} (${describeHttpMatch(b.http)}) ${b.action}s the same traffic of ${pair}, so it would be both allowed and denied`);
    }
    if (a.action === b.action && !sameMatch && (a.http === undefined || b.http === undefined)) {
      throw this._error(a.label, `${a.action} ${describeHttpMatch(a.http)}`, `either whole-connection (L4) or HTTP (L7) rules for ${pair}, not both: ${b.label} is ${describeHttpMatch(b.http)} (Consul takes one Action or a list of Permissions per source)`);
    }
  }

  private checkName(field: string, name: string): void {
    if (typeof name !== 'string' || Token.isUnresolved(name) || name.length > DNS_1123_LABEL_MAX_LENGTH || !DNS_1123_LABEL.test(name)) {
      throw this._error(field, name, `${DNS_LABEL_EXPECTED}; tokens are not accepted, identities are fixed at synth time`);
    }
  }

  private checkPort(field: string, port: number, min: number, expected: string): void {
    if (typeof port !== 'number' || Token.isUnresolved(port) || !Number.isInteger(port) || port < min || port > 65535) {
      throw this._error(field, port, expected);
    }
  }

  private knownList(names: string[]): string {
    return names.length === 0 ? '(none declared)' : [...names].sort().join(', ');
  }
}

/**
 * Defines a lambda-mesh: services, functions and their versions, and who may call whom (default deny).
 *
 * The mesh itself creates no AWS resources. It is the model that the Consul intentions, the functions' local
 * upstream ports, the Istio AuthorizationPolicies and the Gloo routes are rendered from, so they cannot disagree.
 *
 * @example
 * const mesh = new Mesh(this, 'Mesh', { datacenter: 'dc1' });
 * const featureStore = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
 * const modelA = mesh.addFunction('model-a', { versions: ['v1', 'v2'] });
 * featureStore.allowFrom(modelA, { http: { pathPrefix: '/features', methods: ['GET'] } });
 */
export class Mesh extends MeshBase {
  /**
   * References a mesh defined in another stack or app. Functions and rules added to it here belong to this app;
   * its services are the ones listed in `attrs.services`.
   */
  public static fromMeshAttributes(scope: Construct, id: string, attrs: MeshAttributes): IMesh {
    return new ImportedMesh(scope, id, attrs);
  }

  /**
   * Renders an L7 match in a few words, as the mesh's error messages do: `GET|HEAD /features*` (methods, then the
   * path: exact, prefix with `*`, regex after `~`, then `[header]` per header match), or `any (L4)` for none.
   *
   * @param http a match as given to `allowFrom`/`denyFrom`, or as `graph()` resolves it (methods sorted)
   */
  public static describeHttpMatch(http?: HttpMatch): string {
    return describeHttpMatch(http);
  }

  constructor(scope: Construct, id: string, props: MeshProps = {}) {
    super(scope, id, { value: props.meshName ?? id.toLowerCase(), given: props.meshName !== undefined }, props);
  }

  /**
   * Declares a backend service of the mesh.
   *
   * @example mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
   */
  public addService(name: string, options: ServiceOptions): MeshService {
    return this.registerService(name, options, false);
  }
}

class ImportedMesh extends MeshBase {
  constructor(scope: Construct, id: string, attrs: MeshAttributes) {
    super(scope, id, { value: attrs.meshName, given: true }, attrs);
    for (const s of attrs.services ?? []) {
      this.registerService(s.name, s, true);
    }
  }
}

function isDnsName(value: string): boolean {
  return typeof value === 'string' && value.length <= 253 && value.split('.').every((l) => l.length <= DNS_1123_LABEL_MAX_LENGTH && DNS_1123_LABEL.test(l));
}

/** Freezes a resolved graph all the way down: it is shared by every reader, so no reader may change it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) {
      deepFreeze(v);
    }
  }
  return value;
}
