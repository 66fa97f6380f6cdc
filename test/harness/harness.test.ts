import * as path from 'path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { type App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Acknowledgements } from '../../constructs/core/validation';
import { addComplianceChecks } from '../../lib/validation';
import {
  cdkJsonContext,
  CRDS_DIR_ENV,
  expectNoUnacknowledgedFindings,
  expectValidManifests,
  type Finding,
  formatFindings,
  newTestApp,
  normalizeAssetHashes,
  REPO_ROOT,
  validateCloudFormation,
  validateManifest,
} from './index';
import * as serializer from './snapshot-serializer';

function appWithPlainBucket(): { app: App; bucket: s3.Bucket } {
  const app = newTestApp();
  const stack = new Stack(app, 'Fixture');
  const bucket = new s3.Bucket(stack, 'Bucket');
  return { app, bucket };
}

function jestConfig(): { snapshotSerializers?: string[] } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.config.js is CommonJS and outside the TS project
  return require(path.join(REPO_ROOT, 'jest.config.js')) as { snapshotSerializers?: string[] };
}

/** Runs `fn` and returns the message it throws, failing the test when it does not throw. */
function captureError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('expected the call to throw');
}

function ruleIds(findings: readonly Finding[]): string[] {
  return findings.map((f) => f.ruleId);
}

describe('cdk-context', () => {
  test('test apps get the feature flags of cdk.json, and extra context wins', () => {
    const app = newTestApp({ '@aws-cdk/core:checkSecretUsage': false, 'lambda-mesh:test': 'yes' });
    expect(cdkJsonContext()['@aws-cdk/aws-s3:publicAccessBlockedByDefault']).toBe(true);
    expect(app.node.tryGetContext('@aws-cdk/aws-s3:publicAccessBlockedByDefault')).toBe(true);
    expect(app.node.tryGetContext('@aws-cdk/core:checkSecretUsage')).toBe(false);
    expect(app.node.tryGetContext('lambda-mesh:test')).toBe('yes');
    expect(app.outdir).not.toBe(newTestApp().outdir);
  });
});

describe('validateCloudFormation', () => {
  // Shared by the tests below: each synth runs cfn-guard and cdk-nag over the app (about a second).
  let plain: Finding[];

  beforeAll(() => {
    plain = validateCloudFormation(appWithPlainBucket().app).findings;
  });

  test('fails when an S3 bucket has no access logs, SSL enforcement or KMS encryption', () => {
    expect(plain).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          plugin: 'AwsSolutions',
          ruleId: 'AwsSolutions-S1',
          acknowledgementId: 'AwsSolutions::AwsSolutions-S1',
          severity: 'error',
          constructPath: 'Fixture/Bucket/Resource',
        }),
        expect.objectContaining({
          plugin: 'AwsSolutions',
          ruleId: 'AwsSolutions-S10',
          constructPath: 'Fixture/Bucket/Resource',
        }),
        expect.objectContaining({
          plugin: 'cdk-validator-cfnguard',
          ruleId: 's3_bucket_logging_enabled_check',
          acknowledgementId: 'cdk-validator-cfnguard::s3_bucket_logging_enabled_check',
          severity: 'error',
          constructPath: 'Fixture/Bucket/Resource',
          template: 'Fixture.template.json',
          logicalId: expect.stringMatching(/^Bucket[0-9A-F]{8}$/) as unknown,
          message: expect.stringContaining('[CT.S3.PR.2]') as unknown,
        }),
        expect.objectContaining({ plugin: 'cdk-validator-cfnguard', ruleId: 's3_bucket_default_encryption_kms_check' }),
      ]),
    );
    expect(formatFindings(plain)).toContain("acknowledge with: { id: 'AwsSolutions::AwsSolutions-S10'");
  });

  test('fails when expectNoUnacknowledgedFindings meets findings, and lists them', () => {
    const thrown = captureError(() => expectNoUnacknowledgedFindings(appWithPlainBucket().app));
    expect(thrown).toMatch(/^\d+ unacknowledged compliance finding\(s\):\n/);
    expect(thrown).toContain('- ERROR [AwsSolutions] AwsSolutions-S1 at Fixture/Bucket/Resource\n');
    expect(thrown).toContain("acknowledge with: { id: 'cdk-validator-cfnguard::s3_bucket_versioning_enabled_check'");
  });

  test('acknowledged findings move to acknowledged, with their reason', () => {
    const { app, bucket } = appWithPlainBucket();
    for (const id of new Set(plain.map((f) => f.acknowledgementId))) {
      Validations.of(bucket).acknowledge({ id, reason: `fixture accepts ${id}` });
    }

    const result = validateCloudFormation(app);

    expect(formatFindings(result.findings)).toBe('');
    expect(result.acknowledged.map((f) => f.acknowledgementId).sort()).toEqual(
      plain.map((f) => f.acknowledgementId).sort(),
    );
    expect(result.acknowledged).toContainEqual(
      expect.objectContaining({
        ruleId: 'AwsSolutions-S1',
        constructPath: 'Fixture/Bucket/Resource',
        reason: 'fixture accepts AwsSolutions::AwsSolutions-S1',
        acknowledgedAt: 'Fixture/Bucket',
      }),
    );
    // With everything acknowledged a real synth passes too (Jest runs apps in "inmemory" mode, which throws).
    expect(() => app.synth({ force: true })).not.toThrow();
  });

  test('the typed helpers build ids that CDK accepts; a bare cdk-nag id hides the finding from the report', () => {
    const { app, bucket } = appWithPlainBucket();
    Acknowledgements.awsSolutions(bucket, 'S10', 'fixture: SSL enforced elsewhere');
    Acknowledgements.guard(bucket, 's3_bucket_versioning_enabled_check', 'fixture: no versioning needed');
    Validations.of(bucket).acknowledge({ id: 'AwsSolutions-S1', reason: 'bare id' });

    const result = validateCloudFormation(app);

    expect(ruleIds(result.acknowledged).sort()).toEqual(['AwsSolutions-S10', 's3_bucket_versioning_enabled_check']);
    expect(result.acknowledged.map((f) => f.reason).sort()).toEqual([
      'fixture: SSL enforced elsewhere',
      'fixture: no versioning needed',
    ]);
    // cdk-nag skips the rule itself for a bare id: suppressed, but absent from the audit trail.
    expect(ruleIds([...result.findings, ...result.acknowledged])).not.toContain('AwsSolutions-S1');
    expect(ruleIds(result.findings)).toContain('s3_bucket_logging_enabled_check');
  });

  test('fails synth when one cfn-guard finding is acknowledged and others remain', () => {
    // Without lib/validation.ts giving cfn-guard violations a severity, CDK marks the report a success here.
    const { app, bucket } = appWithPlainBucket();
    const nagIds = plain.filter((f) => f.plugin === 'AwsSolutions').map((f) => f.acknowledgementId);
    for (const id of nagIds) {
      Validations.of(bucket).acknowledge({ id, reason: 'fixture' });
    }
    Acknowledgements.guard(bucket, 's3_bucket_versioning_enabled_check', 'fixture');
    addComplianceChecks(app);

    expect(() => app.synth()).toThrow(/s3_bucket_logging_enabled_check/);
  });

  test('aws-cdk-lib\'s CloudFormation validation reports in compliance-checked synths, though the suite turns its default off', () => {
    expect(process.env.CDK_VALIDATION).toBe('false');
    const app = newTestApp();
    new Stack(app, 'Empty');

    const findings = validateCloudFormation(app).findings.filter((f) => f.plugin === 'CloudFormation Validate');
    // CloudFormation refuses a template without resources: the engine's F0001.
    expect(findings.map((f) => f.acknowledgementId)).toEqual(['CloudFormation-Validate::F0001']);
  });

  test('a compliant stack has no findings', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Compliant');
    const encryption = sqs.QueueEncryption.SQS_MANAGED;
    const dlq = new sqs.Queue(stack, 'DeadLetters', {
      enforceSSL: true,
      encryption,
      retentionPeriod: Duration.days(14),
      redriveAllowPolicy: { redrivePermission: sqs.RedrivePermission.ALLOW_ALL },
    });
    new sqs.Queue(stack, 'Work', { enforceSSL: true, encryption, deadLetterQueue: { queue: dlq, maxReceiveCount: 3 } });

    const result = expectNoUnacknowledgedFindings(app);

    expect(result).toEqual({ findings: [], acknowledged: [] });
    Template.fromStack(stack).resourceCountIs('AWS::SQS::Queue', 2);
  });

  test('fails when synth itself fails, with the synth error rather than a report', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Broken');
    stack.node.addValidation({ validate: () => ['fixture construct error'] });

    expect(() => validateCloudFormation(app)).toThrow(/fixture construct error/);
  });

  test('the acknowledgement namespaces match the plugin names', () => {
    expect(new AwsSolutionsChecks().name).toBe(Acknowledgements.AWS_SOLUTIONS_NAMESPACE);
    expect(new CfnGuardValidator().name).toBe(Acknowledgements.CFN_GUARD_NAMESPACE);
    expect(Acknowledgements.awsSolutionsId('IAM5[Resource::*]')).toBe('AwsSolutions::AwsSolutions-IAM5[Resource::*]');
    expect(Acknowledgements.awsSolutionsId('AwsSolutions-S1')).toBe('AwsSolutions::AwsSolutions-S1');
  });

  test('findingArn writes an ARN as cdk-nag does: literals where the stack knows them, pseudo parameters elsewhere', () => {
    const app = newTestApp();
    const agnostic = new Stack(app, 'Agnostic');
    const pinned = new Stack(app, 'Pinned', { env: { region: 'eu-west-1' } });
    expect(Acknowledgements.findingArn(agnostic, 'ssm', 'parameter/a/*')).toBe('arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/a/*');
    expect(Acknowledgements.findingArn(pinned, 'ssm', 'parameter/a/*')).toBe('arn:aws:ssm:eu-west-1:<AWS::AccountId>:parameter/a/*');
  });

  test('fails when an acknowledgement names a control id or gives no reason', () => {
    const { bucket } = appWithPlainBucket();
    expect(() => Acknowledgements.guardId('CT.S3.PR.2')).toThrow(/not the 'CT.S3.PR.11' control id/);
    expect(() => Acknowledgements.awsSolutionsId('s3_bucket_logging_enabled_check')).toThrow(/cdk-nag AwsSolutions rule/);
    expect(() => Acknowledgements.guard(bucket, 's3_lifecycle_policy_check', ' ')).toThrow(
      /Fixture\/Bucket: reason: given " "/,
    );
  });
});

describe('validateManifest', () => {
  const knativeService = (spec: Record<string, unknown>): object => ({
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 'hello', namespace: 'default' },
    spec: { template: { spec } },
  });
  const deployment = (replicas: unknown): object => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hello', labels: { 'app.kubernetes.io/name': 'hello' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'hello' } },
      template: { metadata: { labels: { app: 'hello' } }, spec: { containers: [{ name: 'hello', image: 'nginx:1.27' }] } },
    },
  });

  test('a valid Knative Service passes', () => {
    expect(
      validateManifest(
        knativeService({ containerConcurrency: 10, containers: [{ image: 'nginx:1.27', ports: [{ containerPort: 8080 }] }] }),
      ),
    ).toEqual([]);
  });

  test('fails when a Knative Service has containers as a string', () => {
    expect(validateManifest(knativeService({ containers: 'nginx' }))).toEqual([
      'serving.knative.dev/v1 Service "hello": /spec/template/spec/containers: must be array',
    ]);
  });

  test('fails when a Knative Service has a non-integer containerConcurrency', () => {
    const problems = validateManifest(knativeService({ containerConcurrency: 'x', containers: [{ image: 'nginx' }] }));
    expect(problems).toEqual([expect.stringContaining('/spec/template/spec/containerConcurrency: must be integer')]);
  });

  test('fails when a custom resource has a misspelt field', () => {
    const problems = validateManifest(knativeService({ containerConcurency: 10, containers: [{ image: 'nginx' }] }));
    expect(problems).toEqual([expect.stringContaining('/spec/template/spec: unknown field "containerConcurency"')]);
  });

  test('fails when the apiVersion is not a version of the CRD', () => {
    const problems = validateManifest({ ...knativeService({}), apiVersion: 'serving.knative.dev/v1alpha1' });
    expect(problems).toEqual([expect.stringContaining('version v1alpha1 of serving.knative.dev/Service is not defined')]);
  });

  test('Istio PeerAuthentication: STRICT passes, and fails when the mTLS mode is BOGUS', () => {
    const peerAuthentication = (mode: string): object => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: 'mesh' },
      spec: { mtls: { mode } },
    });
    expect(validateManifest(peerAuthentication('STRICT'))).toEqual([]);
    expect(validateManifest(peerAuthentication('BOGUS'))).toEqual([
      expect.stringMatching(/\/spec\/mtls\/mode: must be equal to one of the allowed values: \[.*"STRICT".*\]/),
    ]);
  });

  test('a valid Gloo Upstream passes, and fails when a port is a string', () => {
    const upstream = (port: unknown): object => ({
      apiVersion: 'gloo.solo.io/v1',
      kind: 'Upstream',
      metadata: { name: 'consul-api', namespace: 'gloo-system' },
      spec: { static: { hosts: [{ addr: 'consul.internal', port }] } },
    });
    expect(validateManifest(upstream(8500))).toEqual([]);
    expect(validateManifest(upstream('8500'))).toEqual([expect.stringContaining('/spec/static/hosts/0/port: must be integer')]);
  });

  test('fails when the apiVersion/kind is unknown', () => {
    expect(validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual([
      expect.stringContaining('unknown apiVersion/kind example.com/v1 Widget'),
    ]);
    expect(validateManifest({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'd' } })).toEqual([
      expect.stringContaining('unknown apiVersion/kind apps/v1 Deploymnet'),
    ]);
  });

  test('a valid Deployment and ConfigMap pass', () => {
    expect(validateManifest(deployment(3))).toEqual([]);
    expect(validateManifest({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { a: 'b' } })).toEqual([]);
  });

  test('fails when a Deployment has replicas "three"', () => {
    expect(validateManifest(deployment('three'))).toEqual([
      'apps/v1 Deployment "hello": /spec/replicas: must be integer',
    ]);
  });

  test('fails when metadata.name is missing or not a DNS name, or a label value is invalid', () => {
    expect(validateManifest({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} })).toEqual([
      expect.stringContaining('metadata.name: required'),
    ]);
    expect(validateManifest({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' } })).toEqual([
      expect.stringContaining('metadata.name: "Bad_Name" is not a DNS-1123 subdomain'),
    ]);
    expect(validateManifest({ apiVersion: 'v1', kind: 'Service', metadata: { name: '1st' } })).toEqual([
      expect.stringContaining('is not a DNS-1035 label'),
    ]);
    const labelled = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', labels: { arn: 'arn:aws:iam::1:role/x' } } };
    expect(validateManifest(labelled)).toEqual([expect.stringContaining('metadata.labels.arn: "arn:aws:iam::1:role/x" is not a valid label value')]);
  });

  test('fails when expectValidManifests gets an invalid manifest, naming each problem', () => {
    const thrown = captureError(() =>
      expectValidManifests([deployment(1), deployment('three'), knativeService({ containers: 'x' })]),
    );
    expect(thrown).toBe(
      [
        '2 invalid manifest field(s):',
        '- apps/v1 Deployment "hello": /spec/replicas: must be integer',
        '- serving.knative.dev/v1 Service "hello": /spec/template/spec/containers: must be array',
      ].join('\n'),
    );
    expect(() => expectValidManifests([deployment(1)])).not.toThrow();
  });

  test('fails when the CRD directory is missing, naming the path', () => {
    const previous = process.env[CRDS_DIR_ENV];
    process.env[CRDS_DIR_ENV] = path.join(__dirname, 'fixtures', 'no-such-crds');
    try {
      expect(() => validateManifest(knativeService({}))).toThrow(/CRD directory .*fixtures\/no-such-crds does not exist/);
    } finally {
      if (previous === undefined) {
        delete process.env[CRDS_DIR_ENV];
      } else {
        process.env[CRDS_DIR_ENV] = previous;
      }
    }
  });
});

describe('snapshot serializer', () => {
  const hash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

  test('normalises asset hashes wherever they appear, and nothing else', () => {
    const template = {
      Code: { S3Bucket: { 'Fn::Sub': 'cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}' }, S3Key: `${hash}.zip` },
      Image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:${hash}`,
      Digest: `sha256:${hash}`,
      [`AssetParameters${hash}ArtifactHash0A1B2C3D`]: 'x',
      Other: ['arn:aws:s3:::bucket', hash.slice(1), `${hash}0`, hash.toUpperCase(), 'd41d8cd98f00b204e9800998ecf8427e'],
    };

    const normalized = normalizeAssetHashes(template);

    expect(normalized).toEqual({
      Code: { S3Bucket: { 'Fn::Sub': 'cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}' }, S3Key: '[ASSET-HASH].zip' },
      Image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:[ASSET-HASH]',
      Digest: 'sha256:[ASSET-HASH]',
      'AssetParameters[ASSET-HASH]ArtifactHash0A1B2C3D': 'x',
      Other: template.Other,
    });
    expect(template.Code.S3Key).toBe(`${hash}.zip`);
  });

  test('test() only matches values with hashes that are not yet normalised', () => {
    const template = { Code: { S3Key: `${hash}.zip` } };
    expect(serializer.test(template)).toBe(true);
    expect(serializer.test(`${hash}.zip`)).toBe(true);
    expect(serializer.test(normalizeAssetHashes(template))).toBe(false);
    expect(serializer.test(normalizeAssetHashes(template).Code)).toBe(false);
    expect(serializer.test({ Code: { S3Key: 'handler.zip' } })).toBe(false);
    expect(serializer.test('[ASSET-HASH].zip')).toBe(false);
    expect(serializer.test(42)).toBe(false);
    expect(normalizeAssetHashes(normalizeAssetHashes(template))).toEqual(normalizeAssetHashes(template));
  });

  test('jest.config.js registers the serializer for every test file', () => {
    const config = jestConfig();
    expect(config.snapshotSerializers ?? []).toContain('<rootDir>/test/harness/snapshot-serializer.ts');
  });

  test('snapshots of a synthesized template carry no asset hash', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Assets');
    new lambda.Function(stack, 'Handler', {
      runtime: lambda.Runtime.PYTHON_3_13,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(path.join(__dirname, 'fixtures', 'asset')),
    });
    const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');

    expect(JSON.stringify(functions)).toMatch(/"S3Key":"[0-9a-f]{64}\.zip"/);
    expect(functions).toMatchSnapshot();
  });
});
