import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { ServiceAccountIssuer, ServiceAccountRole } from '../../../constructs/eks';
import { newTestApp } from '../../harness';
import { ACCOUNT, fixture, ISSUER_HOST, meshError, PROVIDER_ARN, REGION } from './fixtures';

interface TrustStatement {
  Action: string;
  Effect: string;
  Principal: { Federated: unknown };
  Condition: { StringEquals: unknown };
}

function trust(stack: Stack): TrustStatement[] {
  const roles = Template.fromStack(stack).findResources('AWS::IAM::Role');
  const [role] = Object.values(roles);
  return (role.Properties as { AssumeRolePolicyDocument: { Statement: TrustStatement[] } }).AssumeRolePolicyDocument.Statement;
}

describe('ServiceAccountRole', () => {
  test('trusts exactly one service account subject, for the STS audience, through the OIDC provider', () => {
    const f = fixture();
    const role = new ServiceAccountRole(f.stack, 'Role', { issuer: f.issuer, namespace: 'gloo-system', serviceAccountName: 'gateway-proxy' });
    const statements = trust(f.stack);
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({ Action: 'sts:AssumeRoleWithWebIdentity', Effect: 'Allow', Principal: { Federated: PROVIDER_ARN } });
    // A literal issuer (an imported provider): the keys are written directly, no CfnJson custom resource.
    expect(statements[0].Condition.StringEquals).toEqual({
      [`${ISSUER_HOST}:sub`]: 'system:serviceaccount:gloo-system:gateway-proxy',
      [`${ISSUER_HOST}:aud`]: 'sts.amazonaws.com',
    });
    Template.fromStack(f.stack).resourceCountIs('Custom::AWSCDKCfnJson', 0);
    expect(role.annotations()).toEqual({ 'eks.amazonaws.com/role-arn': role.roleArn });
    Template.fromStack(f.stack).hasResourceProperties('AWS::IAM::Role', { MaxSessionDuration: 3600 });
  });

  test('works with an aws-eks-v2 cluster: the native OIDC provider, its issuer (a token) in the keys through CfnJson', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Cluster', { env: { account: ACCOUNT, region: REGION } });
    const cluster = new eks.Cluster(stack, 'Cluster', { version: eks.KubernetesVersion.V1_35 });
    new ServiceAccountRole(stack, 'Role', { issuer: ServiceAccountIssuer.fromCluster(cluster), namespace: 'gloo-system', serviceAccountName: 'discovery' });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::IAM::OIDCProvider', 1);
    t.resourceCountIs('Custom::AWSCDKOpenIdConnectProvider', 0);
    const cfnJson = Object.values(t.findResources('Custom::AWSCDKCfnJson'))[0] as { Properties: { Value: unknown } };
    const value = JSON.stringify(cfnJson.Properties.Value);
    expect(value).toContain(':sub');
    expect(value).toContain('system:serviceaccount:gloo-system:discovery');
    expect(value).toContain(':aud');
    expect(value).toContain('sts.amazonaws.com');
  });

  test('works with an imported cluster that names its OIDC provider', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Imported', { env: { account: ACCOUNT, region: REGION } });
    const provider = eks.OidcProviderNative.fromOidcProviderArn(stack, 'Provider', PROVIDER_ARN);
    const cluster = eks.Cluster.fromClusterAttributes(stack, 'Cluster', { clusterName: 'existing', openIdConnectProvider: provider });
    new ServiceAccountRole(stack, 'Role', { issuer: ServiceAccountIssuer.fromCluster(cluster), namespace: 'gloo-system', serviceAccountName: 'gateway-proxy' });
    expect(trust(stack)[0].Principal.Federated).toBe(PROVIDER_ARN);
  });

  test('fails when an imported cluster has no OIDC provider', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Imported', { env: { account: ACCOUNT, region: REGION } });
    const cluster = eks.Cluster.fromClusterAttributes(stack, 'Cluster', { clusterName: 'existing' });
    const err = meshError(() => new ServiceAccountRole(stack, 'Role', { issuer: ServiceAccountIssuer.fromCluster(cluster), namespace: 'gloo-system', serviceAccountName: 'gateway-proxy' }));
    expect(err.field).toBe('openIdConnectProvider');
    expect(err.location).toBe('Imported/Cluster');
  });

  test.each([
    ['namespace', { namespace: 'Gloo_System', serviceAccountName: 'gateway-proxy' }, '"Gloo_System"'],
    ['namespace', { namespace: 'a'.repeat(64), serviceAccountName: 'gateway-proxy' }, `"${'a'.repeat(64)}"`],
    ['serviceAccountName', { namespace: 'gloo-system', serviceAccountName: 'gateway proxy' }, '"gateway proxy"'],
    ['serviceAccountName', { namespace: 'gloo-system', serviceAccountName: '-proxy' }, '"-proxy"'],
  ])('fails when %s is not a DNS-1123 name (%j)', (field, names, given) => {
    const f = fixture();
    const err = meshError(() => new ServiceAccountRole(f.stack, 'Role', { issuer: f.issuer, ...names }));
    expect(err.location).toBe('Eks/Role');
    expect(err.field).toBe(field);
    expect(err.given).toBe(given.length > 120 ? err.given : given);
    expect(err.expected).toMatch(/DNS-1123/);
  });

  test('accepts a DNS-1123 subdomain as the service account name', () => {
    const f = fixture();
    expect(() => new ServiceAccountRole(f.stack, 'Role', { issuer: f.issuer, namespace: 'gloo-system', serviceAccountName: 'gloo.proxy-1' })).not.toThrow();
  });
});
