/**
 * Sample inputs of the server boot scripts, shaped like what ConsulServerCluster passes (CDK-style names).
 */
import { SCOPED_TOKEN_POLICIES } from '../../../constructs/consul/private/acl-policies';
import { type ServerBootInputs } from '../../../constructs/consul/private/boot-inputs';
import { ConsulTokenRole } from '../../../constructs/consul/types';

export const ACCOUNT = '123456789012';
/** Secret ARNs as CDK names them: construct path, hash, then Secrets Manager's 6-character suffix. */
export const arn = (name: string): string => `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:LambdaMeshConsulServers${name}Secret3F2A1B7C-x9KqL2mNpR4t-AbCdEf`;

export function sampleBootInputs(overrides: Partial<ServerBootInputs> = {}): ServerBootInputs {
  return {
    datacenter: 'dc1',
    consulVersion: '1.21.5',
    packageSource: { kind: 'hashicorp-repository' },
    serverCount: 3,
    retryJoinTag: { key: 'lambda-mesh:consul-cluster', value: 'LambdaMeshConsulStack-prod' },
    region: 'eu-west-1',
    secrets: {
      gossipKey: arn('GossipKey'),
      caCertificate: arn('CaCertificate'),
      serverCertificate: arn('ServerCertificate'),
      managementToken: arn('ManagementToken'),
      agentToken: arn('AgentToken'),
    },
    scopedTokens: Object.values(ConsulTokenRole).map((role) => ({
      name: role,
      secretArn: arn(role.replace(/-/g, '')),
      policyRules: SCOPED_TOKEN_POLICIES[role].rules,
      description: SCOPED_TOKEN_POLICIES[role].description,
    })),
    snapshot: { bucket: `lambdameshconsulstack-prod-snapshotsbucket4f2a1b7c-1x2y3z4w5v6u`, prefix: 'consul/snapshots/', schedule: '*-*-* 00/6:00:00' },
    cloudWatch: { logGroupName: '/lambda-mesh/consul/LambdaMeshConsulStack-prod', metricNamespace: 'LambdaMesh/Consul', clusterName: 'prod' },
    signal: { stackName: 'LambdaMeshConsulStack-prod', resourceLogicalId: 'ConsulServersASG46ED3070' },
    healthyTimeoutSeconds: 900,
    ...overrides,
  };
}

