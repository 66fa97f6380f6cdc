import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ConsulDefaults, ConsulImage, type ConsulImageConfig, ConsulImageCache } from '../../../constructs/consul';
import { newTestApp } from '../../harness';
import { meshError } from '../../util';

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

interface Fixture {
  readonly stack: Stack;
  /** The construct images are bound for (named in errors). */
  readonly scope: Construct;
}

function fixture(): Fixture {
  const stack = new Stack(newTestApp(), 'Images', { env: { account: ACCOUNT, region: REGION } });
  return { stack, scope: new Construct(stack, 'User') };
}

/** Binds `image` as the only container of a Fargate task definition and grants its pull to the execution role. */
function inTask(f: Fixture, image: ConsulImage): { config: ConsulImageConfig; template: Template; statements: Array<Record<string, unknown>> } {
  const config = image.bind(f.scope, 'image');
  const td = new ecs.FargateTaskDefinition(f.stack, 'Task');
  td.addContainer('c', { image: config.containerImage, memoryLimitMiB: 64 });
  config.grantPull(td.obtainExecutionRole());
  const template = Template.fromStack(f.stack);
  const policies = Object.values(template.findResources('AWS::IAM::Policy'));
  const statements = policies.flatMap((p) => f.stack.resolve(p.Properties.PolicyDocument.Statement) as Array<Record<string, unknown>>);
  return { config, template, statements };
}

/** The statements of the inline policies of `role`, resolved. */
function roleStatements(stack: Stack, role: iam.Role): Array<Record<string, unknown>> {
  const policy = role.node.tryFindChild('DefaultPolicy') as iam.Policy | undefined;
  return policy ? (stack.resolve(policy.document.toJSON()) as { Statement: Array<Record<string, unknown>> }).Statement : [];
}

function actions(s: Record<string, unknown>): string[] {
  return [s.Action].flat().map(String).sort();
}

function resources(s: Record<string, unknown>): unknown[] {
  return [s.Resource].flat();
}

describe('ConsulImage', () => {
  test.each([
    ['dataplane', () => ConsulImage.dataplane(), `public.ecr.aws/hashicorp/consul-dataplane:${ConsulDefaults.DATAPLANE_VERSION}`],
    ['consulEcs', () => ConsulImage.consulEcs(), `public.ecr.aws/hashicorp/consul-ecs:${ConsulDefaults.CONSUL_ECS_VERSION}`],
    ['consul', () => ConsulImage.consul(), `public.ecr.aws/hashicorp/consul:${ConsulDefaults.CONSUL_VERSION}`],
    ['consulK8sControlPlane', () => ConsulImage.consulK8sControlPlane(), `public.ecr.aws/hashicorp/consul-k8s-control-plane:${ConsulDefaults.CONSUL_K8S_VERSION}`],
  ])('%s() is HashiCorp\'s image on ECR Public at the default version, pulled through a NAT path', (_name, make, expected) => {
    const f = fixture();
    const { config, template, statements } = inTask(f, make());
    expect(config.imageName).toBe(expected);
    expect(config.needsInternet).toBe(true);
    expect(config.cacheRepositoryPrefix).toBeUndefined();
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { ContainerDefinitions: [Match.objectLike({ Image: expected })] });
    // Nothing to grant for a public registry.
    expect(JSON.stringify(statements)).not.toContain('ecr:');
  });

  test('the defaults are the Consul 2.0 line', () => {
    const { CONSUL_VERSION, DATAPLANE_VERSION, CONSUL_ECS_VERSION, CONSUL_K8S_VERSION } = ConsulDefaults;
    expect({ CONSUL_VERSION, DATAPLANE_VERSION, CONSUL_ECS_VERSION, CONSUL_K8S_VERSION }).toEqual({ CONSUL_VERSION: '2.0.3', DATAPLANE_VERSION: '2.0.3', CONSUL_ECS_VERSION: '0.10.0', CONSUL_K8S_VERSION: '2.0.3' });
  });

  test('a given version', () => {
    const f = fixture();
    expect(ConsulImage.dataplane('1.9.4').bind(f.scope, 'image').imageName).toBe('public.ecr.aws/hashicorp/consul-dataplane:1.9.4');
    expect(ConsulImage.consulEcs('0.9.3').bind(f.scope, 'image2').imageName).toBe('public.ecr.aws/hashicorp/consul-ecs:0.9.3');
  });

  describe.each([
    ['dataplane', (v: string) => ConsulImage.dataplane(v)],
    ['consulEcs', (v: string) => ConsulImage.consulEcs(v)],
    ['consul', (v: string) => ConsulImage.consul(v)],
    ['consulK8sControlPlane', (v: string) => ConsulImage.consulK8sControlPlane(v)],
  ])('%s()', (_name, make) => {
    test.each([['latest'], ['v2.0.3'], ['2.0'], ['2.0.3-ent'], ['']])('fails when the version is %p', (version) => {
      const f = fixture();
      const err = meshError(() => make(version).bind(f.scope, 'dataplaneImage'));
      expect(err).toMatchObject({ location: 'Images/User', field: 'dataplaneImage', given: JSON.stringify(version) });
      expect(err.expected).toMatch(/MAJOR\.MINOR\.PATCH/);
    });
  });

  describe('fromDigest', () => {
    test('an image of a public registry, by digest, needs a NAT path', () => {
      const f = fixture();
      const { config, template, statements } = inTask(f, ConsulImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane', DIGEST));
      expect(config.imageName).toBe(`public.ecr.aws/hashicorp/consul-dataplane@${DIGEST}`);
      expect(config.needsInternet).toBe(true);
      template.hasResourceProperties('AWS::ECS::TaskDefinition', { ContainerDefinitions: [Match.objectLike({ Image: `public.ecr.aws/hashicorp/consul-dataplane@${DIGEST}` })] });
      expect(JSON.stringify(statements)).not.toContain('ecr:');
    });

    test('an image of a private ECR registry is pulled through the endpoints: the pull is granted to the execution role', () => {
      const f = fixture();
      const uri = `222222222222.dkr.ecr.us-west-2.amazonaws.com/mirror/consul-ecs`;
      const { config, template, statements } = inTask(f, ConsulImage.fromDigest(uri, DIGEST));
      expect(config.needsInternet).toBe(false);
      expect(config.imageName).toBe(`${uri}@${DIGEST}`);
      const image = (Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions as Array<{ Image: unknown }>)[0].Image;
      expect(JSON.stringify(image)).toContain(`222222222222.dkr.ecr.us-west-2.`);
      expect(JSON.stringify(image)).toContain(`/mirror/consul-ecs@${DIGEST}`);
      const repoArn = 'arn:aws:ecr:us-west-2:222222222222:repository/mirror/consul-ecs';
      const pulls = statements.filter((s) => actions(s).includes('ecr:BatchGetImage'));
      expect(pulls.length).toBeGreaterThan(0);
      for (const s of pulls) {
        expect(actions(s)).toEqual(['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
        expect(resources(s)).toEqual([repoArn]);
      }
      const token = statements.filter((s) => actions(s).includes('ecr:GetAuthorizationToken'));
      expect(token.length).toBeGreaterThan(0);
      expect(token.every((s) => JSON.stringify(resources(s)) === '["*"]')).toBe(true);
      expect(JSON.stringify(statements)).not.toContain('ecr:CreateRepository');
    });

    test('a private ECR registry in China and a FIPS endpoint are recognised', () => {
      const f = fixture();
      const role = new iam.Role(f.stack, 'Nodes', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
      const china = ConsulImage.fromDigest('222222222222.dkr.ecr.cn-north-1.amazonaws.com.cn/consul', DIGEST).bind(f.scope, 'china');
      const fips = ConsulImage.fromDigest('222222222222.dkr.ecr-fips.us-east-1.amazonaws.com/consul', DIGEST).bind(f.scope, 'fips');
      expect([china.needsInternet, fips.needsInternet]).toEqual([false, false]);
      china.grantPull(role);
      fips.grantPull(role);
      const granted = roleStatements(f.stack, role).flatMap(resources);
      expect(granted).toEqual(expect.arrayContaining([
        'arn:aws-cn:ecr:cn-north-1:222222222222:repository/consul',
        'arn:aws:ecr:us-east-1:222222222222:repository/consul',
      ]));
    });

    test.each([['sha256:abc'], [`sha256:${'A'.repeat(64)}`], [`sha512:${'a'.repeat(64)}`], ['2.0.3'], [`${DIGEST}0`]])('fails when the digest is %s', (digest) => {
      const f = fixture();
      const err = meshError(() => ConsulImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane', digest).bind(f.scope, 'dataplaneImage'));
      expect(err).toMatchObject({ location: 'Images/User', field: 'dataplaneImage', given: JSON.stringify(digest) });
      expect(err.expected).toMatch(/sha256/);
    });

    test.each([
      ['public.ecr.aws/hashicorp/consul-dataplane:2.0.3'],
      [`public.ecr.aws/hashicorp/consul-dataplane@${DIGEST}`],
      ['https://public.ecr.aws/hashicorp/consul-dataplane'],
      ['public.ecr.aws/HashiCorp/consul-dataplane'],
      [''],
    ])('fails when the repository is %p', (repository) => {
      const f = fixture();
      const err = meshError(() => ConsulImage.fromDigest(repository, DIGEST).bind(f.scope, 'dataplaneImage'));
      expect(err).toMatchObject({ field: 'dataplaneImage', given: JSON.stringify(repository) });
      expect(err.expected).toMatch(/without tag or digest/);
    });
  });

  describe('fromEcrRepository', () => {
    test('by digest or tag, pulled through the endpoints; the pull is granted', () => {
      const f = fixture();
      const repo = new ecr.Repository(f.stack, 'Mirror');
      const repoArn = { 'Fn::GetAtt': [f.stack.getLogicalId(repo.node.defaultChild as ecr.CfnRepository), 'Arn'] };
      const { config, statements } = inTask(f, ConsulImage.fromEcrRepository(repo, DIGEST));
      expect(config.needsInternet).toBe(false);
      expect(config.cacheRepositoryPrefix).toBeUndefined();
      expect(JSON.stringify(f.stack.resolve(config.imageName))).toContain(`@${DIGEST}`);
      expect(statements.filter((s) => actions(s).includes('ecr:BatchGetImage')).flatMap(resources)).toContainEqual(repoArn);
      expect(statements.some((s) => actions(s).includes('ecr:GetAuthorizationToken'))).toBe(true);

      const tagged = ConsulImage.fromEcrRepository(repo, '2.0.3').bind(f.scope, 'tagged');
      expect(JSON.stringify(f.stack.resolve(tagged.imageName))).toMatch(/:2\.0\.3"/);
    });

    test.each([['bad tag'], ['-leading-dash'], ['x'.repeat(129)], ['sha256:abc']])('fails when the tag is %p', (tag) => {
      const f = fixture();
      const repo = new ecr.Repository(f.stack, 'Mirror');
      const err = meshError(() => ConsulImage.fromEcrRepository(repo, tag).bind(f.scope, 'dataplaneImage'));
      expect(err).toMatchObject({ location: 'Images/User', field: 'dataplaneImage', given: JSON.stringify(tag) });
    });
  });
});

describe('ConsulImageCache', () => {
  test('a pull-through cache rule of ECR Public, with a prefix of its own', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache');
    const other = new ConsulImageCache(f.stack, 'OtherCache');
    expect(cache.repositoryPrefix).toMatch(/^ecr-public-[0-9a-f]{8}$/);
    expect(other.repositoryPrefix).toMatch(/^ecr-public-[0-9a-f]{8}$/);
    expect(other.repositoryPrefix).not.toBe(cache.repositoryPrefix);
    const t = Template.fromStack(f.stack);
    t.resourceCountIs('AWS::ECR::PullThroughCacheRule', 2);
    t.hasResourceProperties('AWS::ECR::PullThroughCacheRule', {
      EcrRepositoryPrefix: cache.repositoryPrefix,
      UpstreamRegistry: 'ecr-public',
      UpstreamRegistryUrl: 'public.ecr.aws',
      CredentialArn: Match.absent(),
    });
    expect(cache.node.defaultChild).toBeInstanceOf(ecr.CfnPullThroughCacheRule);
  });

  test('the default prefix is stable for a construct path', () => {
    const a = new ConsulImageCache(fixture().stack, 'Cache').repositoryPrefix;
    const b = new ConsulImageCache(fixture().stack, 'Cache').repositoryPrefix;
    expect(a).toBe(b);
  });

  test('a given prefix', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache', { repositoryPrefix: 'prod/ecr-public' });
    expect(cache.repositoryPrefix).toBe('prod/ecr-public');
    Template.fromStack(f.stack).hasResourceProperties('AWS::ECR::PullThroughCacheRule', { EcrRepositoryPrefix: 'prod/ecr-public' });
  });

  test.each([['a'], ['x'.repeat(31)], ['Upper'], ['ends-'], ['trailing/'], ['/leading'], ['a//b'], ['has space'], ['a..b']])('fails when the prefix is %p', (repositoryPrefix) => {
    const f = fixture();
    const err = meshError(() => new ConsulImageCache(f.stack, 'Cache', { repositoryPrefix }));
    expect(err).toMatchObject({ location: 'Images/Cache', field: 'repositoryPrefix', given: JSON.stringify(repositoryPrefix) });
    expect(err.expected).toMatch(/2 to 30/);
  });

  test('an image through the cache is its repository under the prefix, in this account and region, with no NAT path needed', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache', { repositoryPrefix: 'ecr-public-test' });
    const { config, template } = inTask(f, cache.image(ConsulImage.consulEcs()));
    expect(config.needsInternet).toBe(false);
    expect(config.cacheRepositoryPrefix).toBe('ecr-public-test');
    // `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/hashicorp/consul-ecs:<version>`, the URL suffix as the partition has it.
    const uri = { 'Fn::Join': ['', [`${ACCOUNT}.dkr.ecr.${REGION}.`, { Ref: 'AWS::URLSuffix' }, `/ecr-public-test/hashicorp/consul-ecs:${ConsulDefaults.CONSUL_ECS_VERSION}`]] };
    expect(f.stack.resolve(config.imageName)).toEqual(uri);
    const image = (Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions as Array<{ Image: unknown }>)[0].Image;
    expect(image).toEqual(uri);
  });

  test('a digest-pinned ECR Public image through the cache keeps its digest', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache', { repositoryPrefix: 'ecr-public-test' });
    const config = cache.image(ConsulImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane', DIGEST)).bind(f.scope, 'image');
    expect(f.stack.resolve(config.imageName)).toEqual({ 'Fn::Join': ['', [`${ACCOUNT}.dkr.ecr.${REGION}.`, { Ref: 'AWS::URLSuffix' }, `/ecr-public-test/hashicorp/consul-dataplane@${DIGEST}`]] });
  });

  test('grantPull of a cached image: the pull on its repository, the token, and the first pull on the prefix', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache', { repositoryPrefix: 'ecr-public-test' });
    const role = new iam.Role(f.stack, 'Nodes', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    cache.image(ConsulImage.dataplane()).bind(f.scope, 'image').grantPull(role);
    const statements = roleStatements(f.stack, role);
    expect(statements).toEqual(expect.arrayContaining([
      expect.objectContaining({
        Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
        Resource: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/ecr-public-test/hashicorp/consul-dataplane`,
      }),
      expect.objectContaining({ Action: 'ecr:GetAuthorizationToken', Resource: '*' }),
      expect.objectContaining({
        Action: ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
        Resource: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/ecr-public-test/*`,
      }),
    ]));
    expect(statements).toHaveLength(3);
  });

  test('grantFirstPull: import and create, on the cache\'s prefix only', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache', { repositoryPrefix: 'ecr-public-test' });
    const role = new iam.Role(f.stack, 'Nodes', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    cache.grantFirstPull(role);
    expect(roleStatements(f.stack, role)).toEqual([{
      Action: ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
      Effect: 'Allow',
      Resource: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/ecr-public-test/*`,
    }]);
  });

  test.each([
    ['quay.io/x/y', () => ConsulImage.fromDigest('quay.io/x/y', DIGEST)],
    ['Docker Hub', () => ConsulImage.fromDigest('hashicorp/consul-dataplane', DIGEST)],
    ['a private ECR', () => ConsulImage.fromDigest(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/hashicorp/consul-ecs`, DIGEST)],
  ])('fails when the cached image is not of ECR Public (%s)', (_name, make) => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache');
    const err = meshError(() => cache.image(make()).bind(f.scope, 'dataplaneImage'));
    expect(err).toMatchObject({ location: 'Images/User', field: 'dataplaneImage' });
    expect(err.expected).toMatch(/public\.ecr\.aws/);
    expect(err.expected).toContain('Images/Cache');
  });

  test('fails when the cached image is of an ECR repository', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache');
    const repo = new ecr.Repository(f.stack, 'Mirror');
    expect(meshError(() => cache.image(ConsulImage.fromEcrRepository(repo, '2.0.3')).bind(f.scope, 'dataplaneImage')).field).toBe('dataplaneImage');
  });

  test('fails when the cached image has a bad version: the image\'s own check runs first', () => {
    const f = fixture();
    const cache = new ConsulImageCache(f.stack, 'Cache');
    const err = meshError(() => cache.image(ConsulImage.dataplane('latest')).bind(f.scope, 'dataplaneImage'));
    expect(err).toMatchObject({ field: 'dataplaneImage', given: '"latest"' });
    expect(err.expected).toMatch(/MAJOR\.MINOR\.PATCH/);
  });
});
