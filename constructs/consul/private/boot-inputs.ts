/**
 * What the ConsulServerCluster construct knows at synth time and the server boot script needs.
 * Every string may be a CloudFormation token (an ARN, a bucket name): the script generator treats them as
 * opaque values and never parses them.
 */
export interface ServerBootInputs {
  /** The Consul datacenter (a DNS-1123 label). */
  readonly datacenter: string;
  /** The Consul version to install, e.g. `1.21.5`. */
  readonly consulVersion: string;
  /** How the Consul package is installed. */
  readonly packageSource: PackageSource;
  /** `bootstrap_expect`: the number of servers (1, 3 or 5). */
  readonly serverCount: number;
  /** The EC2 tag that cloud auto-join looks for (`retry_join = ["provider=aws tag_key=... tag_value=..."]`). */
  readonly retryJoinTag: { readonly key: string; readonly value: string };
  /** The AWS region (a token in environment-agnostic stacks). */
  readonly region: string;
  /** Secrets Manager secret ARNs, each holding JSON as documented on {@link ServerSecretArns}. */
  readonly secrets: ServerSecretArns;
  /** ACL tokens the servers create with fixed AccessorID/SecretID, each bound to its own policy. */
  readonly scopedTokens: ReadonlyArray<{ readonly name: string; readonly secretArn: string; readonly policyRules: string; readonly description: string }>;
  /** Where snapshots go: `s3://<bucket>/<prefix>consul-<dc>-<UTC timestamp>.snap`. */
  readonly snapshot: { readonly bucket: string; readonly prefix: string; readonly schedule: string };
  /** CloudWatch: the log group the agent ships Consul's logs to, and the namespace of the health metric. */
  readonly cloudWatch: { readonly logGroupName: string; readonly metricNamespace: string; readonly clusterName: string };
  /** What cfn-signal reports to: the stack and the logical ID of the Auto Scaling group. */
  readonly signal: { readonly stackName: string; readonly resourceLogicalId: string };
  /** How long a booting server may take to join and see the cluster healthy before it signals failure, in seconds. */
  readonly healthyTimeoutSeconds: number;
  /**
   * Where the server library (`consulServerLibrary()`, token-free) is in S3, as a CDK asset. The user data
   * downloads it and checks its SHA-256 before sourcing it.
   * Without it the library is embedded in the user data (gzip+base64), which costs about 9 KB of EC2's 16 KB.
   */
  readonly library?: { readonly bucket: string; readonly key: string };
}

/**
 * One secret per item, so each reader gets exactly what it needs:
 * - gossipKey: `{"GossipKey"}` (base64 of 32 random bytes)
 * - caCertificate: `{"CertificatePem"}`
 * - serverCertificate: `{"CertificatePem","PrivateKeyPem"}` (SAN `server.<dc>.consul`, `localhost`, `127.0.0.1`)
 * - managementToken / agentToken: `{"AccessorID","SecretID"}`
 */
export interface ServerSecretArns {
  readonly gossipKey: string;
  readonly caCertificate: string;
  readonly serverCertificate: string;
  readonly managementToken: string;
  readonly agentToken: string;
}

/** How the Consul package reaches the server. */
export type PackageSource =
  /** HashiCorp's RPM repository, its signing key checked against a pinned fingerprint (needs egress to it). */
  | { readonly kind: 'hashicorp-repository' }
  /** An RPM in S3 (for VPCs with no egress), checked against its SHA-256. */
  | { readonly kind: 's3'; readonly bucket: string; readonly key: string; readonly sha256: string };
