import { createHash } from 'crypto';
import * as fs from 'fs';
import { gzipSync } from 'zlib';
import { Token } from 'aws-cdk-lib';
import { AGENT_POLICY, SCOPED_TOKEN_POLICIES } from './acl-policies';
import { CONSUL_PATHS, serverAgentConfig } from './agent-config';
import { type ServerBootInputs } from './boot-inputs';
import { describeValue, LambdaMeshError } from '../../core/errors';
import { fillPlaceholders, shippedFile } from '../../core/internal';

/**
 * The fingerprint of the key that signs HashiCorp's Linux packages and is served at
 * `https://rpm.releases.hashicorp.com/gpg` ("HashiCorp Security (HashiCorp Package Signing)", key ID
 * `FC9CA96ACA026560`). HashiCorp rotated it on 10 September 2026 (HCSEC-2026-33); the key before it,
 * `798A EC65 4E5C 1542 8C8E 42EE AA16 FCBC A621 E701`, no longer matches what the repository serves, so a server
 * pinning it could not boot. It is not the key that signs the `SHA256SUMS` files of releases.hashicorp.com
 * (`C874 011F 0AB4 0511 0D02 1055 3436 5D94 72D7 468F`): pinning that one would reject the repository's key.
 *
 * @see https://discuss.hashicorp.com/t/hcsec-2026-33-hashicorp-linux-signing-gpg-key-update-ca026560/77734
 * @see https://github.com/hashicorp/consul/issues/23921
 * @see https://www.hashicorp.com/trust/security ("Linux Package Checksum Verification")
 */
export const HASHICORP_PACKAGE_SIGNING_KEY_FINGERPRINT = 'D55C0D1AC78A8D8126CB631CFC9CA96ACA026560';

/** Where things land on a server. */
export const SERVER_FILES = {
  /** The boot/snapshot/health logic ({@link consulServerLibrary}), sourced by the three scripts. */
  library: '/usr/local/lib/lambda-mesh/consul-server.sh',
  snapshotScript: '/usr/local/sbin/consul-snapshot',
  healthScript: '/usr/local/sbin/consul-health-metric',
  cloudWatchAgentConfig: '/opt/aws/amazon-cloudwatch-agent/etc/consul-logs.json',
} as const;

/** The systemd units the boot script installs: the timers are enabled, the services run by them. */
export const SYSTEMD_UNIT_NAMES = {
  consul: 'consul.service',
  snapshotService: 'consul-snapshot.service',
  snapshotTimer: 'consul-snapshot.timer',
  healthService: 'consul-health-metric.service',
  healthTimer: 'consul-health-metric.timer',
} as const;

/** The metrics {@link healthMetricScript} publishes (unit `Count`), with dimension `ClusterName`. */
export const HEALTH_METRICS = {
  healthyServers: 'HealthyServers',
  voters: 'Voters',
  dimension: 'ClusterName',
} as const;

/** EC2 refuses user data over 16 KB (raw, before base64). */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** The server library's text, under `constructs/`: a bash file with placeholders ({@link consulServerLibrary}). */
const SERVER_LIBRARY_SOURCE = 'consul/scripts/server-library.sh';

/**
 * The EC2 user data of a Consul server on Amazon Linux 2023.
 *
 * In order: install jq, the CloudWatch agent and cfn-bootstrap; start shipping logs; install Consul (HashiCorp's
 * repository with its signing key pinned, or an RPM from S3 checked against its SHA-256); read the TLS material,
 * gossip key and tokens from Secrets Manager through the instance role (none of them is in the script) into
 * 0640 root:consul files; write `consul.json` ({@link serverAgentConfig}) and check it with `consul validate`;
 * start Consul; wait, at most `healthyTimeoutSeconds`, until autopilot reports the cluster healthy with
 * `serverCount` voters including this server; create or update the ACL policies and tokens and merge
 * `MeshGateway.Mode = local` into `proxy-defaults` (every server does it, idempotently); install the snapshot and
 * health timers; signal CloudFormation. Any failure signals failure, and the log says which step failed.
 *
 * The logic is {@link consulServerLibrary}, embedded gzip+base64 and checked against its SHA-256, because the
 * plain text would not fit in EC2's 16 KB; this script holds the deployment's values (any may be a token,
 * embedded single-quoted, never parsed) and the files that carry them. Render it with `UserData.custom()` (an
 * `Fn::Join`), never through `Fn::Sub`, which would take `${...}` for its own.
 */
export function serverUserData(inputs: ServerBootInputs): string {
  checkInputs(inputs);
  const s = inputs.secrets;
  const pkg = inputs.packageSource;
  const library = consulServerLibrary();
  const script = `#!/usr/bin/env bash
set -euo pipefail
# lambda-mesh: boots a Consul server (Amazon Linux 2023). No secret here: they are read from Secrets Manager
# at boot. The logic is lambda-mesh's consul-server library (from S3, or embedded gzip+base64 to fit EC2's
# 16 KB), checked against its SHA-256 before it is sourced; then the values.
umask 077
install -d -m 0755 ${dirname(SERVER_FILES.library)}
${inputs.library
    ? `aws s3 cp --only-show-errors --region ${sh(inputs.region)} ${
      sh(`s3://${inputs.library.bucket}/${inputs.library.key}`)} ${SERVER_FILES.library}`
    : `base64 -d <<'LAMBDA_MESH_LIBRARY' | gunzip >${SERVER_FILES.library}
${wrap(gzipSync(Buffer.from(library), { level: 9 }).toString('base64'), 76)}
LAMBDA_MESH_LIBRARY`}
printf '%s  %s\\n' ${sha256(library)} ${SERVER_FILES.library} | sha256sum --check --quiet
chmod 0644 ${SERVER_FILES.library}
# shellcheck source=/dev/null
source ${SERVER_FILES.library}

# Read by the library.
# shellcheck disable=SC2034
{
  CONSUL_VERSION=${sh(inputs.consulVersion)}
  REGION=${sh(inputs.region)}
  SERVER_COUNT=${num(inputs.serverCount)}
  HEALTHY_TIMEOUT_SECONDS=${num(inputs.healthyTimeoutSeconds)}
  STACK_NAME=${sh(inputs.signal.stackName)}
  SIGNAL_RESOURCE=${sh(inputs.signal.resourceLogicalId)}
  GOSSIP_KEY_SECRET=${sh(s.gossipKey)}
  CA_SECRET=${sh(s.caCertificate)}
  SERVER_CERT_SECRET=${sh(s.serverCertificate)}
  MANAGEMENT_TOKEN_SECRET=${sh(s.managementToken)}
  AGENT_TOKEN_SECRET=${sh(s.agentToken)}
${pkg.kind === 's3'
    ? `  PACKAGE_SOURCE=s3
  PACKAGE_BUCKET=${sh(pkg.bucket)}
  PACKAGE_KEY=${sh(pkg.key)}
  PACKAGE_SHA256=${sh(pkg.sha256)}`
    : '  PACKAGE_SOURCE=hashicorp-repository'}
}

consul_json() {
  ${heredoc(`${JSON.stringify(serverAgentConfig(inputs))}\n`, 'CONSUL_JSON')}
}

cloudwatch_agent_json() {
  ${heredoc(cloudWatchAgentConfig(inputs), 'CLOUDWATCH')}
}

snapshot_script() {
  ${heredoc(snapshotScript(inputs), 'SNAPSHOT_SCRIPT')}
}

health_metric_script() {
  ${heredoc(healthMetricScript(inputs), 'HEALTH_SCRIPT')}
}

snapshot_timer_unit() {
  ${heredoc(snapshotTimerUnit(inputs.snapshot.schedule), 'SNAPSHOT_TIMER')}
}

# ACL policy and token per part of lambda-mesh: name, token secret, description, rules.
scoped_tokens() {
${scopedTokenCalls(inputs.scopedTokens)}
}

boot_main
`;
  checkSize(script);
  return script;
}

/**
 * The body of the user data's `scoped_tokens`: one `scoped_token` call per token, with its description and rules
 * only when they are not its role's built-in policy (which the library carries).
 */
function scopedTokenCalls(tokens: ServerBootInputs['scopedTokens']): string {
  if (tokens.length === 0) {
    return '  :';
  }
  return tokens.map((t) => `  scoped_token ${sh(t.name)} ${sh(t.secretArn)}${
    isKnownPolicy(t) ? '' : ` ${sh(t.description)} ${sh(t.policyRules)}`}`).join('\n');
}

/**
 * The snapshot script, `/usr/local/sbin/consul-snapshot`, run by {@link SYSTEMD_UNIT_NAMES.snapshotTimer} on every
 * server. Only the Raft leader acts (its node ID is autopilot's `Leader`), so each run yields one snapshot:
 * `consul snapshot save` to a private temporary directory, `consul snapshot inspect` to check it, `aws s3 cp` to
 * `s3://<bucket>/<prefix>consul-<dc>-<UTC timestamp>.snap`, then the local copy is removed. The object is encrypted
 * by the bucket's default encryption, which must be SSE-KMS with the cluster's key: `--sse aws:kms` without
 * `--sse-kms-key-id` would select the AWS managed key `aws/s3` instead. The management token reaches the CLI as
 * `CONSUL_HTTP_TOKEN_FILE` and curl as a header file, never in argv.
 *
 * @see https://developer.hashicorp.com/consul/commands/snapshot/save
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html (x-amz-server-side-encryption-aws-kms-key-id)
 */
export function snapshotScript(inputs: ServerBootInputs): string {
  return maintenanceScript('Consul snapshot to S3', 'snapshot_main', {
    SNAPSHOT_BUCKET: inputs.snapshot.bucket,
    SNAPSHOT_PREFIX: inputs.snapshot.prefix,
    DATACENTER: inputs.datacenter,
    REGION: inputs.region,
  });
}

/**
 * The health metric script, `/usr/local/sbin/consul-health-metric`, run every minute by
 * {@link SYSTEMD_UNIT_NAMES.healthTimer} on every server: the Raft leader publishes `HealthyServers` (voters
 * autopilot reports healthy) and `Voters` to CloudWatch, dimension `ClusterName`. Followers publish nothing, and
 * a cluster without a leader publishes nothing at all: an alarm on these metrics must treat missing data as
 * breaching.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/operator/autopilot#read-the-autopilot-state
 */
export function healthMetricScript(inputs: ServerBootInputs): string {
  return maintenanceScript('Consul server health to CloudWatch', 'health_main', {
    METRIC_NAMESPACE: inputs.cloudWatch.metricNamespace,
    CLUSTER_NAME: inputs.cloudWatch.clusterName,
    REGION: inputs.region,
  });
}

/**
 * The maintenance units the boot script writes to `/etc/systemd/system/`, by file name: a oneshot service and a
 * timer each for the snapshot (`OnCalendar=` the snapshot schedule, a systemd calendar expression such as
 * `hourly` or `*-*-* 00/6:00:00`) and for the health metric (every minute).
 *
 * @see https://www.freedesktop.org/software/systemd/man/latest/systemd.timer.html
 */
export function systemdUnits(inputs: ServerBootInputs): Record<string, string> {
  return {
    ...staticMaintenanceUnits(),
    [SYSTEMD_UNIT_NAMES.snapshotTimer]: snapshotTimerUnit(inputs.snapshot.schedule),
  };
}

/** The three maintenance units that are the same everywhere; the library writes them. */
function staticMaintenanceUnits(): Record<string, string> {
  const service = (description: string, script: string): string => `[Unit]
Description=${description}
After=${SYSTEMD_UNIT_NAMES.consul}
ConditionPathExists=${CONSUL_PATHS.secretsFile}

[Service]
Type=oneshot
ExecStart=${script}
`;
  return {
    [SYSTEMD_UNIT_NAMES.snapshotService]: service('Consul snapshot to S3 (leader only)', SERVER_FILES.snapshotScript),
    [SYSTEMD_UNIT_NAMES.healthService]:
      service('Consul server health to CloudWatch (leader only)', SERVER_FILES.healthScript),
    [SYSTEMD_UNIT_NAMES.healthTimer]:
      timerUnit('Consul server health every minute', 'OnCalendar=*-*-* *:*:00\nAccuracySec=1s'),
  };
}

/** The snapshot timer: the one unit that carries a deployment's value, so the user data writes it. */
function snapshotTimerUnit(schedule: string): string {
  return timerUnit('Consul snapshots to S3', `OnCalendar=${schedule}\nPersistent=true`);
}

function timerUnit(description: string, lines: string): string {
  return `[Unit]
Description=${description}

[Timer]
${lines}

[Install]
WantedBy=timers.target
`;
}

/**
 * The amazon-cloudwatch-agent configuration: Consul's logs (`/var/log/consul/*.log`) to the cluster's log group,
 * one stream per instance (`{instance_id}`), and the boot log (cloud-init's output, which says why a boot
 * failed) to `{instance_id}/boot`. The agent runs as root: Consul's logs are readable by the `consul` group only,
 * and adding the agent's user to that group would let it read the secrets file as well.
 *
 * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html
 */
export function cloudWatchAgentConfig(inputs: ServerBootInputs): string {
  const group = inputs.cloudWatch.logGroupName;
  const file = (path: string, stream: string): Record<string, string> =>
    ({ file_path: path, log_group_name: group, log_stream_name: stream, timezone: 'UTC' });
  return `${JSON.stringify({
    agent: { run_as_user: 'root' },
    logs: {
      logs_collected: {
        files: {
          collect_list: [
            file(`${CONSUL_PATHS.logDir}*.log`, '{instance_id}'),
            file('/var/log/cloud-init-output.log', '{instance_id}/boot'),
          ],
        },
      },
    },
  })}\n`;
}

/**
 * The server's logic as a bash library, the same for every deployment (no input, no token, no secret): sourced
 * by the user data (`boot_main`), by the snapshot script (`snapshot_main`) and by the health script
 * (`health_main`), which set its UPPER_CASE parameters and define the payload functions it calls
 * (`consul_json`, `cloudwatch_agent_json`, `snapshot_script`, `health_metric_script`, `snapshot_timer_unit`,
 * `scoped_tokens`).
 *
 * Secrets never reach argv: curl reads the token from a 0600 header file, the consul CLI from
 * `CONSUL_HTTP_TOKEN_FILE`, jq reads secret values from files (`--slurpfile`), never `--arg`.
 *
 * The script is `constructs/consul/scripts/server-library.sh`, shipped with the package and read at synth. The
 * values TypeScript owns because other parts use them too (file paths, unit names, metric names, the ACL
 * policies, the unit files) fill its `@@NAME@@` placeholders ({@link fillPlaceholders}).
 */
export function consulServerLibrary(): string {
  const template = fs.readFileSync(shippedFile(SERVER_LIBRARY_SOURCE, 'the Consul server library'), 'utf8');
  return fillPlaceholders(template, {
    SNAPSHOT_SCRIPT: SERVER_FILES.snapshotScript,
    HEALTH_SCRIPT: SERVER_FILES.healthScript,
    CONFIG_DIR: CONSUL_PATHS.configDir,
    HASHICORP_KEY_FINGERPRINT: HASHICORP_PACKAGE_SIGNING_KEY_FINGERPRINT,
    CLOUDWATCH_AGENT_CONFIG: SERVER_FILES.cloudWatchAgentConfig,
    DATA_DIR: CONSUL_PATHS.dataDir,
    LOG_DIR: CONSUL_PATHS.logDir,
    CONSUL_UNIT_NAME: SYSTEMD_UNIT_NAMES.consul,
    CONSUL_UNIT: consulUnit().replace(/\n$/, ''),
    KNOWN_POLICIES: knownPolicyCases(),
    AGENT_POLICY_NAME: sh(AGENT_POLICY.name),
    AGENT_POLICY_DESCRIPTION: sh(AGENT_POLICY.description),
    AGENT_POLICY_RULES: sh(AGENT_POLICY.rules),
    MAINTENANCE_UNITS: maintenanceUnitFiles(),
    SNAPSHOT_TIMER_NAME: SYSTEMD_UNIT_NAMES.snapshotTimer,
    HEALTH_TIMER_NAME: SYSTEMD_UNIT_NAMES.healthTimer,
    HEALTHY_SERVERS_METRIC: HEALTH_METRICS.healthyServers,
    VOTERS_METRIC: HEALTH_METRICS.voters,
    METRIC_DIMENSION: HEALTH_METRICS.dimension,
  }, SERVER_LIBRARY_SOURCE);
}

/** The `known_policy` case branches: the description and rules of each of lambda-mesh's own roles. */
function knownPolicyCases(): string {
  return Object.entries(SCOPED_TOKEN_POLICIES).map(([role, p]) => [
    `    ${role}:description) printf '%s' ${sh(p.description)} ;;`,
    `    ${role}:rules) printf '%s' ${sh(p.rules)} ;;`,
  ].join('\n')).join('\n');
}

/** The commands that write the three maintenance units that are the same everywhere, one heredoc each. */
function maintenanceUnitFiles(): string {
  return Object.entries(staticMaintenanceUnits())
    .map(([name, text]) => heredoc(text, unitDelimiter(name)).replace('cat <<', `cat >"$SYSTEMD_DIR/${name}" <<`))
    .map((command) => `  ${command}`)
    .join('\n');
}

/** A maintenance script: its values, then the library's entry point. */
function maintenanceScript(title: string, entry: string, values: Record<string, string>): string {
  return `#!/usr/bin/env bash
set -euo pipefail
# lambda-mesh: ${title}. Runs on every server; only the Raft leader acts. The logic is in the library.
umask 077
# shellcheck source=/dev/null
source ${SERVER_FILES.library}

# Read by the library.
# shellcheck disable=SC2034
{
${Object.entries(values).map(([name, value]) => `  ${name}=${sh(value)}`).join('\n')}
}

${entry}
`;
}

/**
 * Our own unit rather than the package's (which requires its sample consul.hcl). Type=exec, not notify: a Consul
 * agent signals readiness only once it has joined, so `systemctl start` would block (and time out) while the other
 * servers boot; the boot script waits for real readiness through autopilot instead.
 */
function consulUnit(): string {
  return `[Unit]
Description=Consul server (lambda-mesh)
Documentation=https://developer.hashicorp.com/consul/docs
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
User=consul
Group=consul
ExecStart=/usr/bin/consul agent -config-dir=${CONSUL_PATHS.configDir}/
ExecReload=/bin/kill --signal HUP $MAINPID
KillMode=process
KillSignal=SIGTERM
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/** `cat` of `content` through a quoted heredoc (nothing in it expands); the first line unindented. */
function heredoc(content: string, delimiter: string): string {
  const eof = `LAMBDA_MESH_${delimiter}`;
  if (content.split('\n').includes(eof)) {
    throw new Error(`the heredoc delimiter ${eof} occurs in its content`);
  }
  return `cat <<'${eof}'\n${content.endsWith('\n') ? content : `${content}\n`}${eof}`;
}

function unitDelimiter(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** A single-quoted shell word: nothing in it expands. */
function sh(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A number for bash arithmetic; a token passes through (CloudFormation substitutes the number). */
function num(value: number): string {
  return Token.isUnresolved(value) ? Token.asString(value) : String(value);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function wrap(text: string, width: number): string {
  return (text.match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join('\n');
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}

/**
 * Fails at synth rather than at deploy (EC2 rejects the launch template) when the user data is too big. A token
 * stands for a value not known yet: counted as 256 bytes, longer than any ARN or name it could become.
 */
function checkSize(script: string): void {
  const estimate = Buffer.byteLength(script.replace(/\$\{Token\[[^\]]*\]\}/g, 'x'.repeat(256)));
  if (estimate > USER_DATA_LIMIT_BYTES) {
    throw new LambdaMeshError({
      location: 'ServerBootInputs',
      field: 'userData',
      given: `${estimate} bytes (tokens counted as 256 bytes)`,
      expected: `at most ${USER_DATA_LIMIT_BYTES} bytes, EC2's limit on raw user data: shorten descriptions or policy `
        + 'rules',
    });
  }
}

/** Only what the script itself relies on; everything else is the construct's to validate. */
function checkInputs(inputs: ServerBootInputs): void {
  const fail = (field: string, given: unknown, expected: string): never => {
    throw new LambdaMeshError({ location: 'ServerBootInputs', field, given: describeValue(given), expected });
  };
  const counts = [
    ['serverCount', inputs.serverCount], ['healthyTimeoutSeconds', inputs.healthyTimeoutSeconds],
  ] as const;
  for (const [field, value] of counts) {
    if (!Token.isUnresolved(value) && !(Number.isInteger(value) && value > 0)) {
      fail(field, value, 'a positive integer');
    }
  }
  const names = new Set<string>([AGENT_POLICY.name]);
  inputs.scopedTokens.forEach((token, i) => {
    // The name goes into a URL path (GET /v1/acl/policy/name/:name) and a file name.
    if (!Token.isUnresolved(token.name) && !/^[A-Za-z0-9_-]{1,128}$/.test(token.name)) {
      fail(`scopedTokens[${i}].name`, token.name, 'an ACL policy name of letters, digits, - and _ (at most 128)');
    }
    if (names.has(token.name)) {
      fail(`scopedTokens[${i}].name`, token.name, 'a name no other policy uses');
    }
    names.add(token.name);
  });
}

/** True when a scoped token uses its role's built-in policy, which the library carries (so the user data need not). */
function isKnownPolicy(token: ServerBootInputs['scopedTokens'][number]): boolean {
  const policies: Readonly<Record<string, { readonly rules: string; readonly description: string } | undefined>> =
    SCOPED_TOKEN_POLICIES;
  const known = policies[token.name];
  return known !== undefined && known.rules === token.policyRules && known.description === token.description;
}
