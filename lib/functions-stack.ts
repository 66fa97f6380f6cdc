import * as path from 'path';
import { Stack, type StackProps } from 'aws-cdk-lib';
import { type Construct } from 'constructs';
import { type IMeshGateway } from '../constructs/consul';
import { MeshFunction } from '../constructs/function';
import { type IIdentityRegistrar } from '../constructs/intentions';
import { type IMesh } from '../constructs/mesh';
import { type IMeshNetwork } from '../constructs/network';
import { type FunctionConfig, withConfigField } from './config';

/** The example model handler every function version of the environment runs (lib/model-handler). */
export const MODEL_HANDLER_DIR = path.join(__dirname, 'model-handler');

/**
 * Properties of the {@link FunctionsStack}.
 */
export interface FunctionsStackProps extends StackProps {
  /** The mesh model. */
  readonly mesh: IMesh;
  /** The network, from the network stack. */
  readonly network: IMeshNetwork;
  /** The mesh gateway, from the control plane stack. */
  readonly gateway: IMeshGateway;
  /** The identity registrar, from the mesh stack. */
  readonly identities: IIdentityRegistrar;
  /** The functions section of the environment config. */
  readonly functions: FunctionConfig[];
  /** Where the config came from, for error messages. */
  readonly configSource: string;
  /**
   * The prefix of every function's name: functions are named `<prefix>-<identity>`, so routes written to YAML
   * (Gloo's Upstream in dist/) and operators know them at synth.
   */
  readonly functionNamePrefix: string;
  /**
   * The handler directory of every function version.
   * @default MODEL_HANDLER_DIR
   */
  readonly code?: string;
}

/**
 * The environment's model functions: one {@link MeshFunction} per function version of the config, each running
 * as its own mesh identity (`model-a-v1`, ...) with the upstreams the rules allow it.
 */
export class FunctionsStack extends Stack {
  /** The functions, by identity. */
  public readonly functions: ReadonlyMap<string, MeshFunction>;

  constructor(scope: Construct, id: string, props: FunctionsStackProps) {
    super(scope, id, props);
    const functions = new Map<string, MeshFunction>();
    props.functions.forEach((f, i) => f.versions.forEach((version, j) => {
      const fn = withConfigField(props.configSource, `functions[${i}].versions[${j}]`, () => new MeshFunction(this, `${pascal(f.name)}${pascal(version)}`, {
        mesh: props.mesh,
        network: props.network,
        gateway: props.gateway,
        identities: props.identities,
        service: f.name,
        version,
        functionName: `${props.functionNamePrefix}-${f.name}-${version}`,
        code: props.code ?? MODEL_HANDLER_DIR,
        ...(f.description !== undefined ? { description: `${f.description} (${f.name}-${version})` } : {}),
      }));
      functions.set(fn.identity, fn);
    }));
    this.functions = functions;
  }
}

/** `model-a` -> `ModelA`: construct ids from the config's DNS labels, stable as long as the names are. */
function pascal(label: string): string {
  return label.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}
