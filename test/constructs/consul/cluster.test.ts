import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ConsulPackage, ConsulServerCluster, type ConsulServerClusterProps, ConsulTokenRole } from '../../../constructs/consul';
import { Mesh } from '../../../constructs/mesh';
import { MeshNetwork } from '../../../constructs/network';
import { cdkJsonContext, findSecretMaterial, formatFindings, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';

interface Fixture {
  readonly app: App;
  readonly stack: Stack;
  readonly cluster: ConsulServerCluster;
  readonly network: MeshNetwork;
}

function cluster(props: Partial<ConsulServerClusterProps> = {}, networkProps = {}): Fixture {
  const app = new App({ context: cdkJsonContext() });
  const stack = new Stack(app, 'ControlPlane');
  const network = new MeshNetwork(stack, 'Network', networkProps);
  const mesh = new Mesh(stack, 'Mesh', { datacenter: 'dc1' });
  return { app, stack, network, cluster: new ConsulServerCluster(stack, 'Consul', { mesh, network, ...props }) };
}


/** The user data of the launch template, with CloudFormation references replaced by placeholder text. */
function renderedUserData(stack: Stack): string {
  const lt = Object.values(Template.fromStack(stack).findResources('AWS::EC2::LaunchTemplate'))[0];
  const join = lt.Properties.LaunchTemplateData.UserData['Fn::Base64'] as unknown;
  const render = (v: unknown): string => {
    if (typeof v === 'string') {
      return v;
    }
    if (v && typeof v === 'object' && 'Fn::Join' in v) {
      const [sep, parts] = (v as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
      return parts.map(render).join(sep);
    }
    // Ref, Fn::GetAtt, Fn::GetStackOutput...: a deploy-time value, a plain word here.
    return 'deploy-time-value';
  };
  return render(join);
}

describe('ConsulServerCluster', () => {
  const fixture = cluster();
  const t = Template.fromStack(fixture.stack);

  test('3 servers across the server subnets by default, replaced one at a time keeping a quorum', () => {
    t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: '3',
      MaxSize: '3',
      DesiredCapacity: Match.absent(),
      HealthCheckType: 'ELB',
      VPCZoneIdentifier: Match.arrayWith([{ Ref: Match.stringLikeRegexp('NetworkVpcServersSubnet1') }]),
    });
    t.hasResource('AWS::AutoScaling::AutoScalingGroup', {
      UpdatePolicy: {
        AutoScalingRollingUpdate: { MaxBatchSize: 1, MinInstancesInService: 2, WaitOnResourceSignals: true, PauseTime: 'PT15M' },
      },
      CreationPolicy: { ResourceSignal: { Count: 3, Timeout: 'PT15M' } },
    });
    expect(fixture.cluster.size).toBe(3);
  });

  test('cloud auto-join: instances carry the tag that retry_join looks for', () => {
    t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      Tags: Match.arrayWith([{ Key: 'lambda-mesh:consul-cluster', Value: Match.stringLikeRegexp('^consul-dc1-[0-9a-f]{8}$'), PropagateAtLaunch: true }]),
    });
    const tag = (Template.fromStack(fixture.stack).findResources('AWS::AutoScaling::AutoScalingGroup') as Record<string, { Properties: { Tags: Array<{ Key: string; Value: string }> } }>);
    const value = Object.values(tag)[0].Properties.Tags.find((x) => x.Key === 'lambda-mesh:consul-cluster')!.Value;
    expect(renderedUserData(fixture.stack)).toContain(`provider=aws region=deploy-time-value tag_key=lambda-mesh:consul-cluster tag_value=${value}`);
  });

  test('IMDSv2 required, encrypted gp3 root volume, Amazon Linux 2023 for the instance type\'s architecture', () => {
    t.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: {
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 30, DeleteOnTermination: true } }],
        InstanceType: 'm7g.large',
        ImageId: { Ref: Match.stringLikeRegexp('al2023.*arm64') },
      },
    });
    const x86 = Template.fromStack(cluster({ instanceType: new ec2.InstanceType('m7i.large') }).stack);
    x86.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: { InstanceType: 'm7i.large', ImageId: { Ref: Match.stringLikeRegexp('al2023.*x86') } } });
  });

  test('secrets: one per item, KMS-encrypted, created empty (the generator writes the values)', () => {
    t.resourceCountIs('AWS::SecretsManager::Secret', 10);
    t.allResourcesProperties('AWS::SecretsManager::Secret', { KmsKeyId: Match.anyValue(), GenerateSecretString: Match.absent(), SecretString: Match.absent() });
    t.hasResourceProperties('Custom::ConsulSecrets', {
      Datacenter: 'dc1',
      ServerCertificateValidityDays: '730',
      Secrets: { GossipKey: { Ref: Match.anyValue() }, CaPrivateKey: { Ref: Match.anyValue() } },
      ScopedTokens: { 'intentions-writer': Match.anyValue(), 'identity-registrar': Match.anyValue(), 'workload-identity': Match.anyValue(), 'kubernetes-acl-init': Match.anyValue() },
    });
    for (const role of Object.values(ConsulTokenRole)) {
      expect(fixture.cluster.tokenSecret(role)).toBeDefined();
    }
  });

  test('the secrets generator runs in the VPC with a least-privilege role', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      VpcConfig: { SubnetIds: Match.arrayWith([{ Ref: Match.stringLikeRegexp('NetworkVpcFunctionsSubnet1') }]) },
      ReservedConcurrentExecutions: 1,
    });
    const policies = Object.values(t.findResources('AWS::IAM::Policy')).map((p) => JSON.stringify(p.Properties.PolicyDocument));
    const generator = policies.find((p) => p.includes('secretsmanager:PutSecretValue'))!;
    expect(JSON.parse(generator)).toMatchObject({
      Statement: expect.arrayContaining([
        expect.objectContaining({ Action: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'] }),
        expect.objectContaining({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Condition: { StringEquals: { 'kms:ViaService': expect.anything() } } }),
      ]),
    });
    // It never reads the CA private key on behalf of servers: only the generator's role may.
    const caKey = Object.keys(t.findResources('AWS::SecretsManager::Secret')).find((k) => k.includes('CaPrivateKey'))!;
    const readers = policies.filter((p) => p.includes(`"Ref":"${caKey}"`));
    expect(readers).toHaveLength(1);
    expect(readers[0]).toContain('PutSecretValue');
  });

  test('least privilege: every "*" resource is one the AWS API requires, and each is listed here', () => {
    const wildcards: string[] = [];
    for (const policy of Object.values(t.findResources('AWS::IAM::Policy'))) {
      for (const st of policy.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>) {
        const resources = Array.isArray(st.Resource) ? st.Resource : [st.Resource];
        if (resources.includes('*')) {
          wildcards.push(...(Array.isArray(st.Action) ? st.Action : [st.Action]));
        }
      }
    }
    // Commented in cluster.ts: auto-join, PutMetricData (namespace condition), Session Manager, Lambda VPC ENIs.
    expect(wildcards.sort()).toEqual([
      'cloudwatch:PutMetricData',
      'ec2:AssignPrivateIpAddresses', 'ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:DescribeInstances',
      'ec2:DescribeNetworkInterfaces', 'ec2:UnassignPrivateIpAddresses',
      'ec2messages:AcknowledgeMessage', 'ec2messages:DeleteMessage', 'ec2messages:FailMessage', 'ec2messages:GetEndpoint',
      'ec2messages:GetMessages', 'ec2messages:SendReply',
      'ssm:UpdateInstanceInformation',
      'ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel', 'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel',
    ].sort());
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'cloudwatch:PutMetricData', Condition: { StringEquals: { 'cloudwatch:namespace': 'LambdaMesh/Consul' } } })]) },
    });
    // No wildcard action anywhere.
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).not.toMatch(/"[a-z0-9]+:\*"|"\*:/);
  });

  test('the server role reads exactly its secrets, writes only snapshots, and signals only its own stack', () => {
    const serverPolicy = Object.entries(t.findResources('AWS::IAM::Policy')).find(([k]) => k.startsWith('ConsulServerRoleDefaultPolicy'))![1];
    const statements = serverPolicy.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>;
    const read = statements.find((s) => s.Action === 'secretsmanager:GetSecretValue')!;
    expect((read.Resource as unknown[]).length).toBe(9); // everything but the CA private key
    expect(statements).toContainEqual(expect.objectContaining({ Action: 's3:PutObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^ConsulSnapshots/), 'Arn'] }, '/snapshots/*']] } }));
    expect(statements).toContainEqual(expect.objectContaining({ Action: 'cloudformation:SignalResource', Resource: { Ref: 'AWS::StackId' } }));
    expect(statements).toContainEqual(expect.objectContaining({ Action: 's3:GetObject', Resource: expect.objectContaining({ 'Fn::Join': expect.anything() }) }));
    expect(JSON.stringify(statements)).not.toContain('s3:GetObject*');
  });

  test('ports: RPC and gossip among servers only; HTTPS and gRPC-TLS from the load balancer only; HTTP and gRPC off', () => {
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { IpProtocol: 'tcp', FromPort: 8300, ToPort: 8300, SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('ConsulServerSecurityGroup'), 'GroupId'] } });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { IpProtocol: 'udp', FromPort: 8301, ToPort: 8301 });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { IpProtocol: 'tcp', FromPort: 8301, ToPort: 8301 });
    for (const port of [8501, 8503]) {
      t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: port, ToPort: port, SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('ConsulLoadBalancerSecurityGroup'), 'GroupId'] } });
      t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: port, Protocol: 'TCP' });
    }
    for (const port of [22, 8500, 8502]) {
      expect(JSON.stringify(t.findResources('AWS::EC2::SecurityGroupIngress'))).not.toMatch(new RegExp(`"FromPort":${port}\\b`));
    }
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal', Type: 'network' });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Port: 8501, HealthCheckProtocol: 'HTTPS', HealthCheckPath: '/v1/status/leader' });
    const ud = renderedUserData(fixture.stack);
    expect(ud).toMatch(/"ports":\{"http":-1,"https":8501,"grpc":-1,"grpc_tls":8503/);
  });

  test('clients are let in through the load balancer with allowClientsFrom (HTTPS and gRPC-TLS)', () => {
    const f = cluster();
    const client = new ec2.SecurityGroup(f.stack, 'Client', { vpc: f.network.vpc });
    f.cluster.allowClientsFrom(client);
    const tt = Template.fromStack(f.stack);
    for (const port of [8501, 8503]) {
      tt.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: port, SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('Client'), 'GroupId'] } });
    }
  });

  test('backups: hourly by default to a versioned, KMS-encrypted, object-locked bucket with lifecycle; restore is the documented procedure', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true }] },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 7 } } },
      LifecycleConfiguration: { Rules: [Match.objectLike({ Prefix: 'snapshots/', ExpirationInDays: 30, NoncurrentVersionExpiration: { NoncurrentDays: 7 } })] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    const ud = renderedUserData(fixture.stack);
    expect(ud).toContain('OnCalendar=hourly');
    const custom = renderedUserData(cluster({ snapshotSchedule: '*-*-* 02:00:00' }).stack);
    expect(custom).toContain('OnCalendar=*-*-* 02:00:00');
  });

  test('the quorum alarm fires below a majority of healthy voters, or when no leader reports, and notifies the topic', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'LambdaMesh/Consul',
      MetricName: 'HealthyServers',
      Threshold: 2,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('ConsulAlarms') }],
    });
    Template.fromStack(cluster({ size: 5 }).stack).hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 3 });
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  test('logs go to a KMS-encrypted log group kept a year', () => {
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365, KmsKeyId: Match.anyValue() });
  });

  test('no cdk-nag or cfn-guard finding is left unacknowledged, and each acknowledgement has a reason', () => {
    const result = validateCloudFormation(cluster().app);
    if (result.findings.length > 0) {
      throw new Error(formatFindings(result.findings));
    }
    expect(result.acknowledged.length).toBeGreaterThan(0);
    for (const a of result.acknowledged) {
      expect(a.reason?.length ?? 0).toBeGreaterThan(40);
    }
  });

  describe('no secret in any synthesized output', () => {
    test('templates, user data and the server library hold no key, certificate, token or gossip key', () => {
      const { app } = cluster();
      const assembly = app.synth();
      // What is deployed: the templates and the assets (not CDK's own tree and metadata files, whose construct
      // paths hold CDK's fixed lookup IDs).
      const texts = fs.readdirSync(assembly.directory, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile() && (d.name.endsWith('.template.json') || path.join(d.parentPath, d.name).includes(`${path.sep}asset.`)))
        .map((d) => fs.readFileSync(path.join(d.parentPath, d.name), 'utf8'));
      expect(texts.length).toBeGreaterThan(2);
      expect(texts.some((x) => x.includes('consul-server library'))).toBe(true);
      expect(texts.flatMap(findSecretMaterial)).toEqual([]);
    });

    test('fails on a planted secret (the scan works)', () => {
      const { app, stack } = cluster();
      new CfnOutput(stack, 'Planted', { value: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----' });
      new CfnOutput(stack, 'PlantedToken', { value: 'f3b2a1c4-1d2e-4f5a-9b8c-7d6e5f4a3b2c' });
      const template = JSON.stringify(app.synth().getStackByName(stack.stackName).template);
      expect(findSecretMaterial(template)).toEqual(['-----BEGIN PRIVATE KEY-----', 'f3b2a1c4-1d2e-4f5a-9b8c-7d6e5f4a3b2c']);
    });
  });

  test('shellcheck passes on the user data as synthesized (CloudFormation values in place)', () => {
    const which = spawnSync('sh', ['-c', 'command -v shellcheck']);
    if (which.status !== 0) {
      throw new Error('shellcheck is not installed: apt-get install -y shellcheck');
    }
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-ud-')), 'user-data.sh');
    fs.writeFileSync(file, renderedUserData(fixture.stack));
    expect(execFileSync('shellcheck', ['-s', 'bash', '-S', 'style', file], { encoding: 'utf8' })).toBe('');
    // The user data fetches the library from S3 and checks its digest before sourcing it.
    expect(renderedUserData(fixture.stack)).toMatch(/aws s3 cp --only-show-errors --region .* \/usr\/local\/lib\/lambda-mesh\/consul-server\.sh\nprintf '%s {2}%s\\n' [0-9a-f]{64} .* \| sha256sum --check --quiet/);
    expect(Buffer.byteLength(renderedUserData(fixture.stack))).toBeLessThan(16 * 1024 / 2);
  });

  test('devMode allows a single server, with a warning', () => {
    const f = cluster({ size: 1, devMode: true });
    Annotations.fromStack(f.stack).hasWarning('/ControlPlane/Consul', Match.stringLikeRegexp('single Consul server has no redundancy'));
    Template.fromStack(f.stack).hasResource('AWS::AutoScaling::AutoScalingGroup', { UpdatePolicy: { AutoScalingRollingUpdate: { MinInstancesInService: 0 } } });
  });

  test('an S3 package source needs no egress and is read by exact object', () => {
    const app = new App({ context: cdkJsonContext() });
    const stack = new Stack(app, 'ControlPlane');
    const network = new MeshNetwork(stack, 'Network', { serverEgress: false });
    const mirror = s3.Bucket.fromBucketName(stack, 'Mirror', 'rpm-mirror');
    new ConsulServerCluster(stack, 'Consul', {
      mesh: new Mesh(stack, 'Mesh'),
      network,
      package: ConsulPackage.fromBucket(mirror, 'consul/consul-1.21.5-1.aarch64.rpm', 'a'.repeat(64)),
    });
    const ud = renderedUserData(stack);
    expect(ud).toContain("PACKAGE_SOURCE=s3");
    expect(ud).toContain("PACKAGE_KEY='consul/consul-1.21.5-1.aarch64.rpm'");
    const policies = JSON.stringify(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
    expect(policies).toContain(':s3:::rpm-mirror/consul/consul-1.21.5-1.aarch64.rpm"');
    expect(policies).not.toContain('rpm-mirror/*');
  });

  test('fromConsulClusterAttributes references a cluster defined elsewhere', () => {
    const stack = new Stack(new App(), 'Other');
    const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0');
    const imported = ConsulServerCluster.fromConsulClusterAttributes(stack, 'Imported', {
      datacenter: 'dc1',
      endpointAddress: 'consul.internal',
      securityGroup: sg,
      caCertificateSecret: fixture.cluster.caCertificateSecret,
      secretsKey: fixture.cluster.secretsKey,
      intentionsWriterTokenSecret: fixture.cluster.tokenSecret(ConsulTokenRole.INTENTIONS_WRITER),
      identityRegistrarTokenSecret: fixture.cluster.tokenSecret(ConsulTokenRole.IDENTITY_REGISTRAR),
      workloadIdentityTokenSecret: fixture.cluster.tokenSecret(ConsulTokenRole.WORKLOAD_IDENTITY),
      kubernetesAclInitTokenSecret: fixture.cluster.tokenSecret(ConsulTokenRole.KUBERNETES_ACL_INIT),
    });
    for (const role of Object.values(ConsulTokenRole)) {
      expect(imported.tokenSecret(role)).toBe(fixture.cluster.tokenSecret(role));
    }
    expect(imported.connections.defaultPort?.toString()).toBe('8501');
    expect(imported.endpointAddress).toBe('consul.internal');
  });

  describe('bad input', () => {
    test.each([[0], [2], [4], [6], [7]])('fails when size is %s', (size) => {
      const err = meshError(() => cluster({ size }));
      expect(err.location).toBe('ControlPlane/Consul');
      expect(err.field).toBe('size');
      expect(err.given).toBe(String(size));
      expect(err.expected).toBe('3 or 5 servers: an odd number keeps a majority through a failure (3 survives one, 5 survives two)');
    });

    test('fails when size is 1 without devMode', () => {
      expect(meshError(() => cluster({ size: 1 })).expected).toBe('3 or 5 (a single server needs devMode: true)');
    });

    test('fails when devMode is set with more than one server', () => {
      const err = meshError(() => cluster({ size: 3, devMode: true }));
      expect(err.field).toBe('devMode');
      expect(err.expected).toBe('devMode only with size 1 (size is 3)');
    });

    test.each([['v2.0.3'], ['1.21'], ['2.0.3+ent'], ['latest'], ['1.15.2'], ['2.0'], ['0.9.9']])('fails when the Consul version is %s', (consulVersion) => {
      const err = meshError(() => cluster({ consulVersion }));
      expect(err.field).toBe('consulVersion');
      expect(err.given).toBe(JSON.stringify(consulVersion));
      expect(err.expected).toMatch(/a Consul release version X\.Y\.Z, 1\.16\.0 or newer/);
    });

    test('fails when the network has no egress for HashiCorp\'s repository', () => {
      const err = meshError(() => cluster({}, { serverEgress: false }));
      expect(err.field).toBe('package');
      expect(err.expected).toMatch(/ConsulPackage\.fromBucket/);
    });

    test('fails when the network is missing', () => {
      const err = meshError(() => cluster({ network: undefined as unknown as MeshNetwork }));
      expect(err.field).toBe('network');
      expect(err.given).toBe('(missing)');
    });

    test('fails when the snapshot schedule is not a calendar expression', () => {
      expect(meshError(() => cluster({ snapshotSchedule: 'hourly; rm -rf /' })).field).toBe('snapshotSchedule');
    });

    test.each([['not-hex', 'sha256'], ['/abs/key.rpm', 'key']])('fails when an S3 package has a bad %s', (value, field) => {
      const bucket = s3.Bucket.fromBucketName(new Stack(), 'B', 'rpm-mirror');
      const err = meshError(() => (field === 'sha256' ? ConsulPackage.fromBucket(bucket, 'k.rpm', value) : ConsulPackage.fromBucket(bucket, value, 'a'.repeat(64))));
      expect(err.field).toBe(field);
    });
  });
});
