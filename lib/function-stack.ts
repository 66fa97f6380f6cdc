import * as path from 'path';
import { Stack, type StackProps } from 'aws-cdk-lib';
import { type Construct } from 'constructs';
import { type IMeshGateway } from '../constructs/consul';
import { MeshFunction } from '../constructs/function';
import { type IIdentityRegistrar } from '../constructs/intentions';
import { type IMesh } from '../constructs/mesh';
import { type IMeshNetwork } from '../constructs/network';
import { ConfigError, type FunctionConfig, withConfigField } from './config';

/** The example model handler every function version of the environment runs (lib/model-handler). */
export const MODEL_HANDLER_DIR = path.join(__dirname, 'model-handler');

/**
 * The id (and so the name) of the stack of model function `functionName` in environment `environmentName`:
 * `<environment>-function-<function>`. It depends on nothing else in the config, so adding, removing or reordering
 * functions never moves a named function into another stack (which CloudFormation refuses on deploy); the
 * `-function-` infix keeps it clear of the environment's other stacks (`<environment>-network`, ...).
 */
export function modelFunctionStackId(environmentName: string, functionName: string): string {
  return `${environmentName}-function-${functionName}`;
}

/**
 * Properties of a {@link ModelFunctionStack}.
 */
export interface ModelFunctionStackProps extends StackProps {
  /** The mesh model. */
  readonly mesh: IMesh;
  /** The network, from the network stack. */
  readonly network: IMeshNetwork;
  /** The mesh gateway, from the control plane stack. */
  readonly gateway: IMeshGateway;
  /** The identity registrar, from the mesh stack. */
  readonly identities: IIdentityRegistrar;
  /** The model function's entry in the functions section of the environment config. */
  readonly config: FunctionConfig;
  /** Where that entry is in the config (`functions[2]`), for error messages. */
  readonly configField: string;
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
 * One model function of the environment: a {@link MeshFunction} per version of it in the config, each running as
 * its own mesh identity (`model-a-v1`, ...) with the upstreams the rules allow it. One stack per model function
 * keeps every stack far from CloudFormation's 500 resources (5 per version), and lets a team deploy its model alone.
 */
export class ModelFunctionStack extends Stack {
  /** The model function's name in the config (`model-a`). */
  public readonly modelFunctionName: string;
  /** The function versions, by identity (`model-a-v1`), in the config's order. */
  public readonly functions: ReadonlyMap<string, MeshFunction>;

  constructor(scope: Construct, id: string, props: ModelFunctionStackProps) {
    super(scope, id, props);
    const f = props.config;
    this.modelFunctionName = f.name;
    const functions = new Map<string, MeshFunction>();
    const versionsById = new Map<string, string>();
    f.versions.forEach((version, j) => {
      const field = `${props.configField}.versions[${j}]`;
      // The construct id keeps the function name so that logical ids read as in the console (`ModelAV1...`).
      const constructId = `${pascal(f.name)}${pascal(version)}`;
      const clash = versionsById.get(constructId);
      if (clash !== undefined) {
        throw new ConfigError({
          file: props.configSource,
          field,
          given: JSON.stringify(version),
          expected: `a version whose construct id differs from that of version ${JSON.stringify(clash)} (both give ${constructId}; '-' is dropped): rename one`,
        });
      }
      versionsById.set(constructId, version);
      const fn = withConfigField(props.configSource, field, () => new MeshFunction(this, constructId, {
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
    });
    this.functions = functions;
  }
}

/** `model-a` -> `ModelA`: construct ids from the config's DNS labels, stable as long as the names are. */
function pascal(label: string): string {
  return label.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}
