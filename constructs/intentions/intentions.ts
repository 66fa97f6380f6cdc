import { gzipSync } from 'zlib';
import { Annotations, CustomResource, Lazy, Names, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LambdaMeshError } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey, newVpcFunction } from '../core/internal';
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

  constructor(scope: Construct, id: string, props: MeshIntentionsProps) {
    super(scope, id);
    const catchAllDeny = props.catchAllDeny ?? true;
    if (!catchAllDeny) {
      Annotations.of(this).addWarningV2('lambda-mesh:intentions:noCatchAllDeny', 'catchAllDeny is off: traffic no rule mentions is then decided by Consul\'s ACL default policy alone (deny in lambda-mesh clusters, but not necessarily in yours).');
    }
    this.owner = `lambda-mesh/${props.mesh.meshName}/${Names.uniqueId(this)}`;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const key = props.key ?? newMeshKey(this, 'Key', `Encrypts the logs of ${this.node.path}`, removalPolicy);
    if (!props.key) {
      allowCloudWatchLogs(key);
    }

    const { fn, securityGroup } = newVpcFunction(this, 'Applier', {
      handler: 'consul-intentions',
      network: props.network,
      purpose: `Applies the Consul intentions of ${this.node.path}`,
      logKey: key,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    grantConsulAccess(fn, securityGroup, props.cluster, ConsulTokenRole.INTENTIONS_WRITER);

    // Rendering and compressing hundreds of sources is not free, and CDK asks for the value more than once
    // (validation, reference resolution, synthesis): do it once per resolved graph, which the mesh caches
    // and replaces on every change.
    let rendered: { readonly graph: MeshGraph; readonly value: string } | undefined;
    const render = (): string => {
      const graph = props.mesh.graph();
      if (rendered?.graph !== graph) {
        rendered = { graph, value: renderCompressed(graph) };
      }
      return rendered.value;
    };
    const renderCompressed = (graph: MeshGraph): string => {
      let json: string;
      try {
        json = JSON.stringify(renderConfigEntries(graph, { catchAllDeny, owner: this.owner }));
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
          expected: `at most ${MAX_COMPRESSED_ENTRIES_BYTES} compressed bytes in one stack: split the mesh's rules over several MeshIntentions in different stacks (each owns its own sources)`,
        });
      }
      return compressed;
    };
    // CDK resolves tokens (to find cross-stack references) before it validates: the lazy value must not throw
    // there, or the error loses this construct's path. Validation reports it instead, and stops synth.
    this.node.addValidation({
      validate: () => {
        try {
          render();
          return [];
        } catch (e) {
          if (LambdaMeshError.isLambdaMeshError(e)) {
            return [e.message];
          }
          throw e;
        }
      },
    });
    const renderOrPlaceholder = (): string => {
      try {
        return render();
      } catch (e) {
        if (LambdaMeshError.isLambdaMeshError(e)) {
          return '';
        }
        throw e;
      }
    };

    const resource = new CustomResource(this, 'Resource', {
      serviceToken: fn.functionArn,
      resourceType: 'Custom::ConsulIntentions',
      properties: {
        Owner: this.owner,
        EntriesGzip: Lazy.string({ produce: renderOrPlaceholder }),
      },
    });
    // The applier must reach the servers and read its token on its first call: its permissions, its network
    // path and the servers, not only its ARN.
    resource.node.addDependency(fn, fn.role!, securityGroup, props.cluster);
  }
}
