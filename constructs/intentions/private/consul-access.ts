import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { type ConsulTokenRole, ConsulPorts, type IConsulCluster } from '../../consul/types';

/**
 * Gives a library function what it needs to call the Consul API as `role`: the network path to the cluster's
 * load balancer (HTTPS 8501), read access to exactly the CA certificate and that role's token, and the
 * environment variables the handlers' `connectionFromSecrets()` reads.
 */
export function grantConsulAccess(fn: lambda.Function, securityGroup: ec2.SecurityGroup, cluster: IConsulCluster, role: ConsulTokenRole): void {
  // Called from the function's side, so both rules live in its stack.
  securityGroup.connections.allowTo(cluster, ec2.Port.tcp(ConsulPorts.HTTPS), 'Consul HTTPS API');
  const token = cluster.tokenSecret(role);
  fn.addToRolePolicy(new iam.PolicyStatement({
    actions: ['secretsmanager:GetSecretValue'],
    resources: [cluster.caCertificateSecret.secretArn, token.secretArn],
  }));
  fn.addToRolePolicy(new iam.PolicyStatement({
    actions: ['kms:Decrypt'],
    resources: [cluster.secretsKey.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(fn).region}.amazonaws.com` } },
  }));
  fn.addEnvironment('CONSUL_ADDRESS', `https://${cluster.endpointAddress}:${ConsulPorts.HTTPS}`);
  // The load balancer's name is not in the servers' certificate: verify the name Consul servers present.
  fn.addEnvironment('CONSUL_SERVER_NAME', `server.${cluster.datacenter}.consul`);
  fn.addEnvironment('CONSUL_CA_SECRET_ARN', cluster.caCertificateSecret.secretArn);
  fn.addEnvironment('CONSUL_TOKEN_SECRET_ARN', token.secretArn);
}
