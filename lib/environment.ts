import * as fs from 'fs';
import * as path from 'path';
import { type App, type Stack, type StackProps } from 'aws-cdk-lib';
import * as cdk8s from 'cdk8s';
import { type MeshFunction } from '../constructs/function';
import { type Mesh } from '../constructs/mesh';
import { type EksConfig, type EnvironmentConfig } from './config';
import { meshFromConfig } from './mesh-from-config';
import { ControlPlaneStack } from './control-plane-stack';
import { EksStack } from './eks-stack';
import { ModelFunctionStack, modelFunctionStackId } from './function-stack';
import { KubernetesPlatform } from './kubernetes';
import { MeshStack } from './mesh-stack';
import { NetworkStack } from './network-stack';
import { ServicesStack } from './services-stack';

/** The `env` of the environment's stacks: an account and a region when the config names them. */
type StackEnvironment = Pick<StackProps, 'env'>;

/**
 * Properties of a {@link MeshEnvironment}.
 */
export interface MeshEnvironmentProps {
  /** The validated environment config. */
  readonly config: EnvironmentConfig;
  /** Where the config came from (a file name, or `(embedded default)`), for error messages. */
  readonly configSource: string;
  /**
   * Where the Kubernetes manifests go.
   * @default 'dist'
   */
  readonly kubernetesOutdir?: string;
}

/**
 * The full lambda-mesh environment described by one config: its CloudFormation stacks (in `app`) and its
 * Kubernetes charts (in a cdk8s app of their own, written by {@link writeKubernetes}).
 *
 * Stacks are direct children of the app, named `<name>-<part>`, so templates land in `cdk.out/<name>-<part>.template.json`.
 * Each model function has a stack of its own, `<name>-function-<function>` (see {@link modelFunctionStackId}).
 */
export class MeshEnvironment {
  /** The mesh model every part renders from. */
  public readonly mesh: Mesh;
  /** The network stack. */
  public readonly networkStack: NetworkStack;
  /** The Consul control plane stack: servers and mesh gateway. */
  public readonly controlPlaneStack: ControlPlaneStack;
  /** The mesh stack: function identities and intentions, applied to Consul at deploy time. */
  public readonly meshStack: MeshStack;
  /**
   * The backend services that the environment runs on ECS or EC2 (and the security-group hooks of external services
   * that name their group), in the mesh: the far end of the functions' calls.
   * @default - none: every service is external without a security group, or on EKS (in the eks stack), so this
   * stack would be empty, and CloudFormation refuses a template without resources
   */
  public readonly servicesStack?: ServicesStack;
  /**
   * The model function stacks, by function name (`model-a`), in the config's order: one stack per function of the
   * config, named `<name>-function-<function>`, with a mesh function per version of it.
   */
  public readonly functionStacks: ReadonlyMap<string, ModelFunctionStack>;
  /** Every function version's mesh function, by identity (`model-a-v1`), in the config's order. */
  public readonly functions: ReadonlyMap<string, MeshFunction>;
  /**
   * The EKS stack: the cluster, Gloo Edge and its routes to the functions.
   * @default - none: the config has no eks section
   */
  public readonly eksStack?: EksStack;
  /** The cdk8s app holding the environment's Kubernetes charts. */
  public readonly kubernetes: cdk8s.App;
  /** The Kubernetes charts built from the model: namespaces, mTLS, authorization, telemetry, the collector. */
  public readonly kubernetesPlatform: KubernetesPlatform;

  private readonly kubernetesOutdir: string;
  private readonly stagingOutdir: string;

  constructor(app: App, props: MeshEnvironmentProps) {
    const { config } = props;
    const env = stackEnvironment(config);
    // The model makes no resources: it lives beside the stacks, and each part renders from it.
    this.mesh = meshFromConfig(app, 'Mesh', config, props.configSource);
    this.networkStack = this.createNetworkStack(app, config, env);
    this.controlPlaneStack = this.createControlPlaneStack(app, props, env);
    this.meshStack = this.createMeshStack(app, config, env);
    if (ServicesStack.hostsAny(config.services)) {
      this.servicesStack = this.createServicesStack(app, props, env);
    }
    const { functionStacks, functions } = this.createFunctionStacks(app, props, env);
    this.functionStacks = functionStacks;
    this.functions = functions;
    if (config.eks) {
      this.eksStack = this.createEksStack(app, props, config.eks, env);
    }

    this.kubernetesOutdir = path.resolve(props.kubernetesOutdir ?? 'dist');
    // Charts are synthesized next to the output and swapped in whole, so a failure never leaves half a dist/.
    this.stagingOutdir = `${this.kubernetesOutdir}.staging-${process.pid}`;
    this.kubernetes = new cdk8s.App({
      outdir: this.stagingOutdir,
      outputFileExtension: '.yaml',
      yamlOutputType: cdk8s.YamlOutputType.FILE_PER_CHART,
    });
    this.kubernetesPlatform = this.createKubernetesPlatform(props);
    // Last in dist/ (it needs Gloo's CRDs, not the platform's namespaces). Written when the region is known at
    // synth (the functions are named `<name>-<identity>`); else the routes exist only in the cluster.
    this.eksStack?.addRoutesChart(this.kubernetes, `${config.name}-gloo-routes`);
  }

  /**
   * The environment's CloudFormation stacks: network, control plane, mesh, services, the model functions' in config
   * order, eks.
   */
  public get stacks(): Stack[] {
    return [
      this.networkStack, this.controlPlaneStack, this.meshStack, ...(this.servicesStack ? [this.servicesStack] : []),
      ...this.functionStacks.values(), ...(this.eksStack ? [this.eksStack] : []),
    ];
  }

  /**
   * Synthesizes the Kubernetes charts into the output directory, replacing what was there. Returns the files written.
   */
  public writeKubernetes(): string[] {
    fs.rmSync(this.stagingOutdir, { recursive: true, force: true });
    fs.mkdirSync(this.stagingOutdir, { recursive: true });
    try {
      this.kubernetes.synth();
    } catch (e) {
      fs.rmSync(this.stagingOutdir, { recursive: true, force: true });
      throw e;
    }
    fs.rmSync(this.kubernetesOutdir, { recursive: true, force: true });
    fs.renameSync(this.stagingOutdir, this.kubernetesOutdir);
    return fs.readdirSync(this.kubernetesOutdir).sort().map((f) => path.join(this.kubernetesOutdir, f));
  }

  private createNetworkStack(app: App, config: EnvironmentConfig, env: StackEnvironment): NetworkStack {
    return new NetworkStack(app, `${config.name}-network`, {
      ...env,
      network: config.network ?? {},
      description: `lambda-mesh ${config.name}: network (VPC, endpoints, flow logs)`,
    });
  }

  private createControlPlaneStack(app: App, props: MeshEnvironmentProps, env: StackEnvironment): ControlPlaneStack {
    const { config } = props;
    return new ControlPlaneStack(app, `${config.name}-control-plane`, {
      ...env,
      mesh: this.mesh,
      network: this.networkStack.network,
      config: config.controlPlane ?? {},
      configSource: props.configSource,
      description: `lambda-mesh ${config.name}: Consul control plane (server cluster, mesh gateway)`,
    });
  }

  private createMeshStack(app: App, config: EnvironmentConfig, env: StackEnvironment): MeshStack {
    return new MeshStack(app, `${config.name}-mesh`, {
      ...env,
      mesh: this.mesh,
      network: this.networkStack.network,
      cluster: this.controlPlaneStack.cluster,
      description: `lambda-mesh ${config.name}: identities and intentions, applied to Consul at deploy time`,
    });
  }

  private createServicesStack(app: App, props: MeshEnvironmentProps, env: StackEnvironment): ServicesStack {
    const { config } = props;
    return new ServicesStack(app, `${config.name}-services`, {
      ...env,
      mesh: this.mesh,
      network: this.networkStack.network,
      cluster: this.controlPlaneStack.cluster,
      authMethod: this.controlPlaneStack.authMethod,
      gateway: this.controlPlaneStack.gateway,
      ecsCluster: this.controlPlaneStack.ecsCluster,
      images: this.controlPlaneStack.images,
      services: config.services,
      configSource: props.configSource,
      description: `lambda-mesh ${config.name}: backend services on ECS in the mesh (sidecars, IAM login)`,
    });
  }

  /**
   * One stack per model function, named after it alone: no function moves between stacks when others come or go.
   * Each starts after the mesh stack (identities) and the services stack (the services it calls).
   */
  private createFunctionStacks(
    app: App, props: MeshEnvironmentProps, env: StackEnvironment,
  ): { functionStacks: Map<string, ModelFunctionStack>; functions: Map<string, MeshFunction> } {
    const { config } = props;
    const functionStacks = new Map<string, ModelFunctionStack>();
    const functions = new Map<string, MeshFunction>();
    config.functions.forEach((f, i) => {
      const stack = new ModelFunctionStack(app, modelFunctionStackId(config.name, f.name), {
        ...env,
        mesh: this.mesh,
        network: this.networkStack.network,
        gateway: this.controlPlaneStack.gateway,
        identities: this.meshStack.identities,
        config: f,
        configField: `functions[${i}]`,
        functionNamePrefix: config.name,
        configSource: props.configSource,
        description: `lambda-mesh ${config.name}: model function ${f.name}, one mesh function per version`,
      });
      // A function's extension reads its identity bundle at start: the registrar must have written it.
      stack.addStackDependency(this.meshStack, 'the function identities are registered before the functions start');
      // HashiCorp's order: the destination services (and the gateway) are in the mesh before any function calls them.
      if (this.servicesStack !== undefined) {
        stack.addStackDependency(this.servicesStack,
          'the services the functions call are in the mesh before the functions start');
      }
      functionStacks.set(f.name, stack);
      stack.functions.forEach((fn, identity) => functions.set(identity, fn));
    });
    return { functionStacks, functions };
  }

  private createEksStack(
    app: App, props: MeshEnvironmentProps, eksConfig: EksConfig, env: StackEnvironment,
  ): EksStack {
    const { config } = props;
    return new EksStack(app, `${config.name}-eks`, {
      ...env,
      mesh: this.mesh,
      network: this.networkStack.network,
      functions: this.functions,
      config: eksConfig,
      consul: {
        cluster: this.controlPlaneStack.cluster,
        gateway: this.controlPlaneStack.gateway,
        images: this.controlPlaneStack.images,
        services: config.services,
        configSource: props.configSource,
      },
      description: `lambda-mesh ${config.name}: EKS cluster, Gloo Edge and its routes to the model functions, `
        + 'consul-k8s and the services placed on EKS',
    });
  }

  /** The Kubernetes charts built from the model, in the cdk8s app; their warnings are reported on a stack. */
  private createKubernetesPlatform(props: MeshEnvironmentProps): KubernetesPlatform {
    const { config } = props;
    const platform = new KubernetesPlatform({
      name: config.name,
      mesh: this.mesh,
      app: this.kubernetes,
      ...(config.kubernetes !== undefined ? { config: config.kubernetes } : {}),
      configSource: props.configSource,
      ...(this.eksStack ? { cluster: this.eksStack.cluster } : {}),
      warningsStack: this.eksStack ?? this.meshStack,
    });
    platform.reportWarnings();
    return platform;
  }
}

/** The stacks' `env`, from the config's: only the account and region it names (none: environment-agnostic). */
function stackEnvironment(config: EnvironmentConfig): StackEnvironment {
  if (!config.env || (config.env.account === undefined && config.env.region === undefined)) {
    return {};
  }
  return {
    env: {
      ...(config.env.account ? { account: config.env.account } : {}),
      ...(config.env.region ? { region: config.env.region } : {}),
    },
  };
}
