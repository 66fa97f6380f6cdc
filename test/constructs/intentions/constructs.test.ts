import { randomBytes } from 'crypto';
import { gunzipSync } from 'zlib';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ConsulServerCluster } from '../../../constructs/consul';
import { IdentityRegistrar, MeshIntentions } from '../../../constructs/intentions';
import { Mesh, ServiceProtocol } from '../../../constructs/mesh';
import { MeshNetwork } from '../../../constructs/network';
import { cdkJsonContext, formatFindings, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';

const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');

function fixture(): { app: App; stack: Stack; mesh: Mesh; network: MeshNetwork; cluster: ConsulServerCluster } {
  const app = new App({ context: cdkJsonContext() });
  const stack = new Stack(app, 'Mesh');
  const network = new MeshNetwork(stack, 'Network');
  const mesh = new Mesh(stack, 'Model', { meshName: 'ml' });
  const cluster = new ConsulServerCluster(stack, 'Consul', { mesh, network });
  const fs = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
  const logs = mesh.addService('log-service', { port: 24224 });
  const a = mesh.addFunction('model-a', { versions: ['v1', 'v2'] });
  fs.allowFrom(a, { http: { pathPrefix: '/features', methods: ['GET'] } });
  logs.allowFrom(a);
  return { app, stack, mesh, network, cluster };
}


describe('MeshIntentions', () => {
  const f = fixture();
  const intentions = new MeshIntentions(f.stack, 'Intentions', { mesh: f.mesh, cluster: f.cluster, network: f.network });
  // A rule added after the construct is still rendered: entries are produced at synth.
  f.mesh.service('feature-store').allowFrom(f.mesh.addFunction('model-b', { versions: ['v1'] }), { http: { pathExact: '/health' } });
  const t = Template.fromStack(f.stack);

  test('ships the entries rendered from the mesh, compressed, with its owner mark', () => {
    const props = Object.values(t.findResources('Custom::ConsulIntentions'))[0].Properties as { Owner: string; EntriesGzip: string };
    expect(props.Owner).toBe(intentions.owner);
    expect(props.Owner).toMatch(/^lambda-mesh\/ml\//);
    const entries = JSON.parse(gunzipSync(Buffer.from(props.EntriesGzip, 'base64')).toString()) as Array<{ Kind: string; Name: string; Sources?: Array<{ Name: string; Action?: string; Permissions?: unknown[] }>; Protocol?: string }>;
    const fsEntry = entries.find((e) => e.Kind === 'service-intentions' && e.Name === 'feature-store')!;
    expect(fsEntry.Sources!.map((s) => s.Name).sort()).toEqual(['model-a-v1', 'model-a-v2', 'model-b-v1']);
    expect(fsEntry.Sources!.every((s) => s.Permissions && !('Precedence' in s))).toBe(true);
    expect(entries.find((e) => e.Name === 'log-service' && e.Kind === 'service-intentions')!.Sources!.map((s) => s.Action)).toEqual(['allow', 'allow']);
    expect(entries).toContainEqual(expect.objectContaining({ Kind: 'service-defaults', Name: 'feature-store', Protocol: 'http' }));
    expect(entries).toContainEqual(expect.objectContaining({ Kind: 'service-intentions', Name: '*', Sources: [expect.objectContaining({ Name: '*', Action: 'deny' })] }));
  });

  test('the applier runs in the VPC, reaches the servers on 8501 and reads only the CA and its own token', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('Applies the Consul intentions'),
      Environment: { Variables: { CONSUL_ADDRESS: Match.anyValue(), CONSUL_SERVER_NAME: 'server.dc1.consul', CONSUL_CA_SECRET_ARN: Match.anyValue(), CONSUL_TOKEN_SECRET_ARN: { Ref: Match.stringLikeRegexp('ConsulIntentionsWriterToken') } } },
      VpcConfig: Match.anyValue(),
    });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 8501, SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('IntentionsApplierSecurityGroup'), 'GroupId'] } });
    const policy = Object.entries(t.findResources('AWS::IAM::Policy')).find(([k]) => k.startsWith('IntentionsApplierRole'))![1];
    expect(JSON.stringify(policy)).toMatch(/ConsulIntentionsWriterToken/);
    expect(JSON.stringify(policy)).not.toMatch(/ConsulManagementToken|ConsulIdentityRegistrarToken/);
  });

  test('warns when the catch-all deny is turned off', () => {
    const g = fixture();
    new MeshIntentions(g.stack, 'Intentions', { mesh: g.mesh, cluster: g.cluster, network: g.network, catchAllDeny: false });
    Annotations.fromStack(g.stack).hasWarning('/Mesh/Intentions', Match.stringLikeRegexp('catchAllDeny is off'));
  });

  test('fails at synth when one entry is larger than Consul takes, naming the construct and the destination', () => {
    const g = fixture();
    new MeshIntentions(g.stack, 'Intentions', { mesh: g.mesh, cluster: g.cluster, network: g.network });
    const svc = g.mesh.service('feature-store');
    for (let i = 0; i < 1500; i++) {
      svc.allowFrom(g.mesh.addFunction(`m${i}`, { versions: ['v1'] }), { http: { pathPrefix: '/' }, description: randomHex(200) });
    }
    expect(() => g.app.synth()).toThrow(/\[Mesh\/Intentions\] Mesh\/Intentions: intentions\[feature-store\]: given "a service-intentions entry of \d+ bytes", expected at most 524288 bytes/);
  });

  test('fails at synth when all entries together do not fit one stack', () => {
    const g = fixture();
    new MeshIntentions(g.stack, 'Intentions', { mesh: g.mesh, cluster: g.cluster, network: g.network });
    // Random descriptions do not compress: 8 destinations x 300 sources x 400 characters.
    for (let d = 0; d < 8; d++) {
      const svc = g.mesh.addService(`svc-${d}`, { port: 10000 + d, protocol: ServiceProtocol.HTTP });
      for (let i = 0; i < 300; i++) {
        svc.allowFrom(g.mesh.source(d === 0 ? g.mesh.addFunction(`m${i}`, { versions: ['v1'] }).sourceName : `m${i}`), { http: { pathPrefix: '/' }, description: randomHex(200) });
      }
    }
    expect(() => g.app.synth()).toThrow(/Mesh\/Intentions: mesh: given config entries of \d+ bytes \(\d+ compressed\), expected at most 409600 compressed bytes in one stack/);
  });
});

describe('IdentityRegistrar', () => {
  const f = fixture();
  const registrar = new IdentityRegistrar(f.stack, 'Identities', { mesh: f.mesh, cluster: f.cluster, network: f.network });
  const t = Template.fromStack(f.stack);

  test('registers every function version, with the bundle path and the mesh key', () => {
    const props = Object.values(t.findResources('Custom::MeshIdentities'))[0].Properties as Record<string, unknown>;
    expect(JSON.parse(props.Identities as string)).toEqual([
      { name: 'model-a-v1', functionName: 'model-a', version: 'v1' },
      { name: 'model-a-v2', functionName: 'model-a', version: 'v2' },
    ]);
    expect(props).toMatchObject({ ParameterPrefix: '/lambda-mesh/ml', Partition: 'default', Namespace: 'default', Datacenter: 'dc1', NodeName: 'lambda-mesh-functions-ml' });
    expect(registrar.parameterName('model-a-v1')).toBe('/lambda-mesh/ml/default/default/model-a-v1');
  });

  test('IAM is scoped to the mesh\'s parameter path and key (through SSM only)', () => {
    const policies = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([k]) => k.includes('BundlePolicy'));
    expect(policies).toHaveLength(2);
    for (const [, p] of policies) {
      const statements = (p.Properties.PolicyDocument as { Statement: Array<{ Action: string[]; Resource: unknown; Condition?: unknown }> }).Statement;
      expect(JSON.stringify(statements[0].Resource)).toContain(':parameter/lambda-mesh/ml/*');
      expect([...(statements[1].Action)].sort()).toEqual(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey']);
      expect(statements[1]).toMatchObject({ Condition: { StringEquals: { 'kms:ViaService': expect.anything() } } });
    }
  });

  test('rotation checks every hour, publishes to LambdaMesh/Identities, and alarms on near expiry or errors', () => {
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
    // Below Consul's latest renewal point (10% of a 72-hour leaf: 7.2 hours), so a healthy mesh never alarms.
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'SecondsToExpiry', Namespace: 'LambdaMesh/Identities', Threshold: 4 * 3600, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'notBreaching' });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Threshold: 1 });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Invocations', Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching' });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ IDENTITIES: '["model-a-v1","model-a-v2"]', METRIC_NAMESPACE: 'LambdaMesh/Identities', PARAMETER_PREFIX: '/lambda-mesh/ml' }) },
    });
    const g = fixture();
    new IdentityRegistrar(g.stack, 'Identities', { mesh: g.mesh, cluster: g.cluster, network: g.network, rotationCheckInterval: Duration.minutes(30) });
    Template.fromStack(g.stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(30 minutes)' });
  });

  test('the registration waits for its permissions (the bundle policy), its network path and the servers', () => {
    const resource = Object.values(t.findResources('Custom::MeshIdentities'))[0] as { DependsOn: string[] };
    const bundlePolicy = Object.keys(t.findResources('AWS::IAM::Policy')).find((k) => k.startsWith('IdentitiesRegistrarBundlePolicy'))!;
    const asg = Object.keys(t.findResources('AWS::AutoScaling::AutoScalingGroup'))[0];
    expect(resource.DependsOn).toEqual(expect.arrayContaining([bundlePolicy, asg]));
  });

  test('grantReadIdentity: one parameter, decrypt only for that parameter through SSM', () => {
    const g = fixture();
    const r = new IdentityRegistrar(g.stack, 'Identities', { mesh: g.mesh, cluster: g.cluster, network: g.network });
    const role = new iam.Role(g.stack, 'FunctionRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    r.grantReadIdentity(role, 'model-a-v1');
    const policy = Object.entries(Template.fromStack(g.stack).findResources('AWS::IAM::Policy')).find(([k]) => k.startsWith('FunctionRoleDefaultPolicy'))![1];
    const json = JSON.stringify(policy);
    expect(json).toContain(':parameter/lambda-mesh/ml/default/default/model-a-v1"');
    expect(json).toContain('"kms:EncryptionContext:PARAMETER_ARN"');
    expect(json).not.toContain('/*');
  });

  test('fails at synth when an identity\'s parameter name exceeds SSM\'s length', () => {
    const g = fixture();
    new IdentityRegistrar(g.stack, 'Identities', { mesh: g.mesh, cluster: g.cluster, network: g.network, parameterPrefix: `/${'p'.repeat(950)}` });
    expect(() => g.app.synth()).toThrow(/Mesh\/Identities: parameterName\(model-a-v1\): given "\/p+\/default\/default\/model-a-v1" \(\d+ characters\), expected at most 956 characters/);
  });

  test('fails at synth when an identity\'s parameter path is deeper than SSM allows', () => {
    const g = fixture();
    new IdentityRegistrar(g.stack, 'Identities', { mesh: g.mesh, cluster: g.cluster, network: g.network, parameterPrefix: '/a/b/c/d/e/f/g/h/i/j/k/l/m' });
    expect(() => g.app.synth()).toThrow(/\(16 levels\), expected at most 15 levels/);
  });

  test('fails when the parameter prefix is not an SSM path', () => {
    const g = fixture();
    const err = meshError(() => new IdentityRegistrar(g.stack, 'Identities', { mesh: g.mesh, cluster: g.cluster, network: g.network, parameterPrefix: 'lambda-mesh/' }));
    expect(err.field).toBe('parameterPrefix');
    expect(err.given).toBe('"lambda-mesh/"');
  });
});

test('the intentions and identities together have no unacknowledged cdk-nag or cfn-guard finding', () => {
  const g = fixture();
  const identities = new IdentityRegistrar(g.stack, 'Identities', { mesh: g.mesh, cluster: g.cluster, network: g.network });
  new MeshIntentions(g.stack, 'Intentions', { mesh: g.mesh, cluster: g.cluster, network: g.network, key: identities.key });
  const result = validateCloudFormation(g.app);
  if (result.findings.length > 0) {
    throw new Error(formatFindings(result.findings));
  }
});
