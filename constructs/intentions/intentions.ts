import { gzipSync } from 'zlib';
import { Annotations, CustomResource, Lazy, Names, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LambdaMeshError } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey, newVpcFunction, type VpcFunction } from '../core/internal';
import { ConsulTokenRole, type IConsulCluster } from '../consul/types';
import { type IMesh, type MeshGraph } from '../mesh';
import { type IMeshNetwork } from '../network';
import { grantConsulAccess } from './private/consul-access';
import { renderConfigEntries } from './private/config-entries';

/**
 * The most the compressed config entries may take in the custom resource's properties. CloudFormation takes
 * templates up to 1 MB; the rest of the stack needs room too.
 */
const MAX_COMPRESSED_ENTRIES_BYTES = 400 * 1024;

/**
 * Properties of {@link MeshIntentions}.
 */
export interface MeshIntentionsProps {
  /** The mesh whose rules become Consul intentions. */
  readonly mesh: IMesh;
  /** The Consul servers to apply them to (with the intentions-writer token). */
  readonly cluster: IConsulCluster;
  /** The network: the applier runs in its function subnets. */
  readonly network: IMeshNetwork;
  /**
   * Add the catch-all `* -> *` deny intention, so only what the mesh allows is allowed even if Consul's ACL
   * default were changed to allow.
   * @default true
   */
  readonly catchAllDeny?: boolean;
  /**
   * The KMS key that encrypts the applier's logs.
   * @default - a new key
   */
  readonly key?: kms.IKey;
  /**
   * How long the applier's logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the log group and key when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Defines the mesh's rules as Consul intentions, applied at deploy time: one `service-intentions` config entry per
 * destination (`Action` for L4 rules, `Permissions` with HTTP matchers for L7 rules, denies first), a
 * `service-defaults` entry with the protocol of every HTTP, HTTP2 or gRPC destination, and a catch-all deny.
 *
 * A custom resource writes them with `PUT /v1/config?cas=...`, so a concurrent edit is never overwritten, and
 * merges only the sources this construct owns: sources someone else wrote stay. Deleting the construct removes
 * only what it wrote. The entries are rendered from the mesh at synth, so rules added later are included.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
 */
export class MeshIntentions extends Construct {
  /** The owner mark on the sources this construct writes (kept in each entry's Meta). */
  public readonly owner: string;

  private readonly mesh: IMesh;
  private readonly catchAllDeny: boolean;
  /** The compressed entries of the last graph rendered ({@link render}). */
  private rendered?: { readonly graph: MeshGraph; readonly value: string };

  constructor(scope: Construct, id: string, props: MeshIntentionsProps) {
    super(scope, id);
    this.mesh = props.mesh;
    this.catchAllDeny = props.catchAllDeny ?? true;
    if (!this.catchAllDeny) {
      Annotations.of(this).addWarningV2('lambda-mesh:intentions:noCatchAllDeny', 'catchAllDeny is off: traffic no '
        + 'rule mentions is then decided by Consul\'s ACL default policy alone (deny in lambda-mesh clusters, but not '
        + 'necessarily in yours).');
    }
    this.owner = `lambda-mesh/${props.mesh.meshName}/${Names.uniqueId(this)}`;
    const { fn, securityGroup } = this.createApplier(props);

    // CDK resolves tokens (to find cross-stack references) before it validates: the lazy value must not throw
    // there, or the error loses this construct's path. Validation reports it instead, and stops synth.
    this.node.addValidation({ validate: () => this.renderingErrors() });
    const resource = new CustomResource(this, 'Resource', {
      serviceToken: fn.functionArn,
      resourceType: 'Custom::ConsulIntentions',
      properties: {
        Owner: this.owner,
        EntriesGzip: Lazy.string({ produce: () => this.renderOrPlaceholder() }),
      },
    });
    // The applier must reach the servers and read its token on its first call: its permissions, its network
    // path and the servers, not only its ARN.
    resource.node.addDependency(fn, fn.role!, securityGroup, props.cluster);
  }

  /** The function that applies the entries, with its log key (unless one is given) and its Consul token. */
  private createApplier(props: MeshIntentionsProps): VpcFunction {
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const key = props.key ?? newMeshKey(this, 'Key', `Encrypts the logs of ${this.node.path}`, removalPolicy);
    if (!props.key) {
      allowCloudWatchLogs(key);
    }
    const applier = newVpcFunction(this, 'Applier', {
      handler: 'consul-intentions',
      network: props.network,
      purpose: `Applies the Consul intentions of ${this.node.path}`,
      logKey: key,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    grantConsulAccess(applier.fn, applier.securityGroup, props.cluster, ConsulTokenRole.INTENTIONS_WRITER);
    return applier;
  }

  /**
   * The entries, compressed. Rendering and compressing hundreds of sources is not free, and CDK asks for the value
   * more than once (validation, reference resolution, synthesis): it is done once per resolved graph, which the
   * mesh caches and replaces on every change.
   */
  private render(): string {
    const graph = this.mesh.graph();
    if (this.rendered?.graph !== graph) {
      this.rendered = { graph, value: this.renderCompressed(graph) };
    }
    return this.rendered.value;
  }

  private renderCompressed(graph: MeshGraph): string {
    let json: string;
    try {
      json = JSON.stringify(renderConfigEntries(graph, { catchAllDeny: this.catchAllDeny, owner: this.owner }));
    } catch (e) {
      // Name this construct, not the renderer: that is where the user can act.
      if (LambdaMeshError.isLambdaMeshError(e)) {
        throw new LambdaMeshError({ location: this.node.path, field: e.field, given: e.given, expected: e.expected });
      }
      throw e;
    }
    // Intentions repeat the same matchers for every source: gzip keeps hundreds of functions within the template.
    const compressed = gzipSync(Buffer.from(json), { level: 9 }).toString('base64');
    if (compressed.length > MAX_COMPRESSED_ENTRIES_BYTES) {
      throw new LambdaMeshError({
        location: this.node.path,
        field: 'mesh',
        given: `config entries of ${json.length} bytes (${compressed.length} compressed)`,
        expected: `at most ${MAX_COMPRESSED_ENTRIES_BYTES} compressed bytes in one stack: split the mesh's rules over `
          + 'several MeshIntentions in different stacks (each owns its own sources)',
      });
    }
    return compressed;
  }

  /** The node validation: what rendering reports, as messages. */
  private renderingErrors(): string[] {
    try {
      this.render();
      return [];
    } catch (e) {
      if (LambdaMeshError.isLambdaMeshError(e)) {
        return [e.message];
      }
      throw e;
    }
  }

  /** The lazy value: the entries, or nothing while they cannot be rendered (validation says why). */
  private renderOrPlaceholder(): string {
    try {
      return this.render();
    } catch (e) {
      if (LambdaMeshError.isLambdaMeshError(e)) {
        return '';
      }
      throw e;
    }
  }
}
