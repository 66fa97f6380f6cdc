import { createHash } from 'crypto';
import { gzipSync } from 'zlib';
import { Token } from 'aws-cdk-lib';
import { AGENT_POLICY, SCOPED_TOKEN_POLICIES } from './acl-policies';
import { CONSUL_PATHS, serverAgentConfig } from './agent-config';
import { type ServerBootInputs } from './boot-inputs';
import { describeValue, LambdaMeshError } from '../../core/errors';

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

/** The Consul API on the server itself: the server certificate has SAN `127.0.0.1`. */
const LOCAL_API = 'https://127.0.0.1:8501';
const HASHICORP_RPM_KEY_URL = 'https://rpm.releases.hashicorp.com/gpg';
const HASHICORP_RPM_BASEURL = 'https://rpm.releases.hashicorp.com/AmazonLinux/latest/$basearch/stable';

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
    ? `aws s3 cp --only-show-errors --region ${sh(inputs.region)} ${sh(`s3://${inputs.library.bucket}/${inputs.library.key}`)} ${SERVER_FILES.library}`
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
${inputs.scopedTokens.length === 0 ? '  :' : inputs.scopedTokens.map((t) => `  scoped_token ${sh(t.name)} ${sh(t.secretArn)}${isKnownPolicy(t) ? '' : ` ${sh(t.description)} ${sh(t.policyRules)}`}`).join('\n')}
}

boot_main
`;
  checkSize(script);
  return script;
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
  return { ...staticMaintenanceUnits(), [SYSTEMD_UNIT_NAMES.snapshotTimer]: snapshotTimerUnit(inputs.snapshot.schedule) };
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
    [SYSTEMD_UNIT_NAMES.healthService]: service('Consul server health to CloudWatch (leader only)', SERVER_FILES.healthScript),
    [SYSTEMD_UNIT_NAMES.healthTimer]: timerUnit('Consul server health every minute', 'OnCalendar=*-*-* *:*:00\nAccuracySec=1s'),
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
          collect_list: [file(`${CONSUL_PATHS.logDir}*.log`, '{instance_id}'), file('/var/log/cloud-init-output.log', '{instance_id}/boot')],
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
 */
export function consulServerLibrary(): string {
  return `#!/usr/bin/env bash
set -euo pipefail
# lambda-mesh consul-server library (generated by constructs/consul/private/scripts.ts). Sourced by the user data,
# ${SERVER_FILES.snapshotScript} and ${SERVER_FILES.healthScript}, which set the UPPER_CASE parameters and define the
# payload functions. It holds no secret: secrets are read from Secrets Manager and local files at run time.

CONFIG_DIR=${CONSUL_PATHS.configDir}
CONSUL_GROUP=consul
CONSUL_ADDR=${LOCAL_API}
CFN_SIGNAL=/opt/aws/bin/cfn-signal
HASHICORP_KEY_FINGERPRINT=${HASHICORP_PACKAGE_SIGNING_KEY_FINGERPRINT}
SYSTEMD_DIR=/etc/systemd/system
SNAPSHOT_SCRIPT_PATH=${SERVER_FILES.snapshotScript}
HEALTH_SCRIPT_PATH=${SERVER_FILES.healthScript}
POLL_SECONDS=5
STEP=starting
FAILED_LINE=
SIGNALLED=false
WORK=

log() { printf '%s %s: %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "\${0##*/}" "$*" >&2; }

# The token travels in files only: a 0600 header file for curl, CONSUL_HTTP_TOKEN_FILE for the consul CLI.
use_token() {
  printf 'X-Consul-Token: %s\\n' "$(<"$WORK/token")" >"$WORK/auth-header"
  export CONSUL_HTTP_ADDR="$CONSUL_ADDR" CONSUL_CACERT="$CONFIG_DIR/tls/ca.pem" CONSUL_HTTP_TOKEN_FILE="$WORK/token"
}

# consul_api METHOD PATH [BODY_FILE]: the response on stdout; fails on HTTP errors.
consul_api() {
  local args=(--silent --show-error --fail --cacert "$CONFIG_DIR/tls/ca.pem" --header "@$WORK/auth-header" --request "$1")
  if (($# >= 3)); then args+=(--header 'Content-Type: application/json' --data "@$3"); fi
  curl "\${args[@]}" "$CONSUL_ADDR$2"
}

# consul_probe PATH OUT_FILE: prints the HTTP status of GET PATH, writes the body to OUT_FILE.
consul_probe() {
  curl --silent --show-error --cacert "$CONFIG_DIR/tls/ca.pem" --header "@$WORK/auth-header" \\
    --output "$2" --write-out '%{http_code}' "$CONSUL_ADDR$1"
}

node_id() { consul_api GET /v1/agent/self | jq -er .Config.NodeID; }

# Functions run by retry execute in a condition, where set -e does not apply: they check each step themselves.
retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if "$@"; then return 0; fi
    log "attempt $attempt of $1 failed"
    sleep "$POLL_SECONDS"
  done
  return 1
}

fetch_secret() {
  aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text --region "$REGION" >"$2"
}

# ---------------------------------------------------------------------------------------------------------------
# Boot

cfn_signal() {
  "$CFN_SIGNAL" --success "$1" --stack "$STACK_NAME" --resource "$SIGNAL_RESOURCE" --region "$REGION"
}

# On EXIT rather than ERR alone: set -u failures and explicit exits do not raise ERR. A resource signal carries no
# reason, so the reason goes to the boot log, which the CloudWatch agent ships.
on_exit() {
  local status=$?
  if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi
  if ((status != 0)) && [[ "$SIGNALLED" != true ]]; then
    log "FAILED (exit $status, line \${FAILED_LINE:-unknown}) while $STEP"
    cfn_signal false || log 'cfn-signal failed as well'
  fi
}

install_packages() {
  dnf install -y jq amazon-cloudwatch-agent aws-cfn-bootstrap
}

start_cloudwatch_agent() {
  cloudwatch_agent_json >${SERVER_FILES.cloudWatchAgentConfig}
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\
    -c file:${SERVER_FILES.cloudWatchAgentConfig}
}

# The repository's key is trusted only if it is exactly the pinned key (one primary key, that fingerprint); dnf then
# checks every package's signature against it (gpgcheck=1). HashiCorp does not sign the repository metadata.
install_consul_from_repository() {
  local key="$WORK/hashicorp.gpg" fingerprints
  curl --silent --show-error --fail --location --proto '=https' --tlsv1.2 --output "$key" ${HASHICORP_RPM_KEY_URL}
  mkdir -m 0700 "$WORK/gnupg"
  fingerprints="$(GNUPGHOME="$WORK/gnupg" gpg --batch --show-keys --with-colons "$key" |
    awk -F: '$1 == "pub" { primary = 1; next } $1 == "fpr" && primary { print $10; primary = 0 }')"
  if [[ "$fingerprints" != "$HASHICORP_KEY_FINGERPRINT" ]]; then
    log "the key at ${HASHICORP_RPM_KEY_URL} has fingerprint(s) [$fingerprints], expected $HASHICORP_KEY_FINGERPRINT"
    return 1
  fi
  install -m 0644 "$key" /etc/pki/rpm-gpg/RPM-GPG-KEY-hashicorp
  rpm --import /etc/pki/rpm-gpg/RPM-GPG-KEY-hashicorp
  cat >/etc/yum.repos.d/hashicorp.repo <<'LAMBDA_MESH_REPO'
[hashicorp]
name=HashiCorp Stable - $basearch
baseurl=${HASHICORP_RPM_BASEURL}
enabled=1
gpgcheck=1
repo_gpgcheck=0
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-hashicorp
LAMBDA_MESH_REPO
  chmod 0644 /etc/yum.repos.d/hashicorp.repo
  dnf install -y "consul-$CONSUL_VERSION"
}

install_consul_from_s3() {
  local rpm="$WORK/consul.rpm"
  aws s3 cp "s3://$PACKAGE_BUCKET/$PACKAGE_KEY" "$rpm" --region "$REGION" --only-show-errors
  printf '%s  %s\\n' "$PACKAGE_SHA256" "$rpm" | sha256sum --check --strict --quiet
  dnf install -y "$rpm"
}

install_consul() {
  case "$PACKAGE_SOURCE" in
    hashicorp-repository) install_consul_from_repository ;;
    s3) install_consul_from_s3 ;;
    *) log "unknown PACKAGE_SOURCE $PACKAGE_SOURCE" && return 1 ;;
  esac
}

prepare_host() {
  getent group "$CONSUL_GROUP" >/dev/null || groupadd --system "$CONSUL_GROUP"
  id consul >/dev/null 2>&1 || useradd --system --gid "$CONSUL_GROUP" --home-dir "$CONFIG_DIR" --shell /sbin/nologin consul
  install -d -m 0750 -o root -g "$CONSUL_GROUP" "$CONFIG_DIR" "$CONFIG_DIR/tls"
  install -d -m 0750 -o consul -g "$CONSUL_GROUP" /opt/consul ${CONSUL_PATHS.dataDir} ${CONSUL_PATHS.logDir}
  # The package's sample configuration would be merged into ours.
  rm -f "$CONFIG_DIR/consul.hcl" "$CONFIG_DIR/consul.env"
}

# install_secret SECRET_FILE JQ_FIELD DESTINATION: one field of a secret, mode 0640 root:consul.
install_secret() {
  jq -je "$2" "$1" >"$1.field"
  install -m 0640 -o root -g "$CONSUL_GROUP" "$1.field" "$3"
  rm -f "$1.field"
}

write_secrets() {
  local dir="$WORK/secrets"
  mkdir -p "$dir"
  fetch_secret "$GOSSIP_KEY_SECRET" "$dir/gossip.json"
  fetch_secret "$CA_SECRET" "$dir/ca.json"
  fetch_secret "$SERVER_CERT_SECRET" "$dir/server.json"
  fetch_secret "$MANAGEMENT_TOKEN_SECRET" "$dir/management.json"
  fetch_secret "$AGENT_TOKEN_SECRET" "$dir/agent.json"
  install_secret "$dir/ca.json" .CertificatePem "$CONFIG_DIR/tls/ca.pem"
  install_secret "$dir/server.json" .CertificatePem "$CONFIG_DIR/tls/server.pem"
  install_secret "$dir/server.json" .PrivateKeyPem "$CONFIG_DIR/tls/server-key.pem"
  jq -n --slurpfile g "$dir/gossip.json" --slurpfile m "$dir/management.json" --slurpfile a "$dir/agent.json" \\
    '{encrypt: $g[0].GossipKey, acl: {tokens: {initial_management: $m[0].SecretID, agent: $a[0].SecretID}}}
     | if [.encrypt, .acl.tokens[]] | all(type == "string" and length > 0) then . else error("a secret lacks a field") end' \\
    >"$dir/secrets.json"
  install -m 0640 -o root -g "$CONSUL_GROUP" "$dir/secrets.json" "$CONFIG_DIR/secrets.json"
  jq -er .SecretID "$dir/management.json" >"$WORK/token"
  use_token
}

write_config() {
  consul_json >"$CONFIG_DIR/consul.json"
  chmod 0640 "$CONFIG_DIR/consul.json"
  chgrp "$CONSUL_GROUP" "$CONFIG_DIR/consul.json"
  cat >"$SYSTEMD_DIR/${SYSTEMD_UNIT_NAMES.consul}" <<'LAMBDA_MESH_UNIT'
${consulUnit()}LAMBDA_MESH_UNIT
  chmod 0644 "$SYSTEMD_DIR/${SYSTEMD_UNIT_NAMES.consul}"
  consul validate "$CONFIG_DIR"
}

start_consul() {
  systemctl daemon-reload
  systemctl enable --now ${SYSTEMD_UNIT_NAMES.consul}
}

cluster_ready() {
  local self state="$WORK/autopilot.json"
  self="$(node_id)" || return 1
  consul_api GET /v1/operator/autopilot/state >"$state" || return 1
  jq -e --arg self "$self" --argjson count "$SERVER_COUNT" \\
    '.Healthy == true and ((.Voters // []) | length) >= $count and any((.Voters // [])[]; . == $self)' \\
    "$state" >/dev/null
}

wait_for_cluster() {
  local deadline=$((SECONDS + HEALTHY_TIMEOUT_SECONDS))
  until cluster_ready 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "no healthy cluster of $SERVER_COUNT voters including this server after \${HEALTHY_TIMEOUT_SECONDS}s"
      return 1
    fi
    sleep "$POLL_SECONDS"
  done
}

# ensure_policy NAME DESCRIPTION RULES: PUT /v1/acl/policy/:id if a policy of that name exists, else PUT /v1/acl/policy.
ensure_policy() {
  local body="$WORK/policy-body.json" found="$WORK/policy.json" code id
  jq -n --arg n "$1" --arg d "$2" --arg r "$3" '{Name: $n, Description: $d, Rules: $r}' >"$body" || return 1
  code="$(consul_probe "/v1/acl/policy/name/$1" "$found")" || return 1
  case "$code" in
    200)
      id="$(jq -er .ID "$found")" || return 1
      consul_api PUT "/v1/acl/policy/$id" "$body" >/dev/null || return 1
      ;;
    403 | 404) consul_api PUT /v1/acl/policy "$body" >/dev/null || return 1 ;;
    *) log "reading ACL policy $1: HTTP $code" && return 1 ;;
  esac
}

# ensure_token SECRET_FILE POLICY DESCRIPTION: the token with the secret's fixed AccessorID and SecretID, bound to
# POLICY. A SecretID cannot be updated: a token whose SecretID differs (the secret was rotated) is deleted and created.
ensure_token() {
  local found="$WORK/token.json" body="$WORK/token-body.json" accessor code
  accessor="$(jq -er .AccessorID "$1")" || return 1
  code="$(consul_probe "/v1/acl/token/$accessor" "$found")" || return 1
  if [[ "$code" == 200 ]] && ! jq -e --slurpfile want "$1" '.SecretID == $want[0].SecretID' "$found" >/dev/null; then
    log "ACL token $accessor has another SecretID: replacing it"
    consul_api DELETE "/v1/acl/token/$accessor" >/dev/null || return 1
    code=404
  fi
  case "$code" in
    200)
      jq -n --arg d "$3" --arg p "$2" '{Description: $d, Policies: [{Name: $p}]}' >"$body" || return 1
      consul_api PUT "/v1/acl/token/$accessor" "$body" >/dev/null || return 1
      ;;
    403 | 404)
      jq --arg d "$3" --arg p "$2" '{AccessorID, SecretID, Description: $d, Policies: [{Name: $p}]}' "$1" >"$body" || return 1
      consul_api PUT /v1/acl/token "$body" >/dev/null || return 1
      ;;
    *) log "reading ACL token $accessor: HTTP $code" && return 1 ;;
  esac
}

# The policies of lambda-mesh's own roles live here, in the compressed library, not in the user data (EC2 caps
# user data at 16 KiB). known_policy NAME description|rules
known_policy() {
  case "$1:$2" in
${Object.entries(SCOPED_TOKEN_POLICIES).map(([role, p]) => `    ${role}:description) printf '%s' ${sh(p.description)} ;;\n    ${role}:rules) printf '%s' ${sh(p.rules)} ;;`).join('\n')}
    *) log "no built-in policy for $1" && return 1 ;;
  esac
}

# scoped_token NAME SECRET_ARN [DESCRIPTION RULES]: without DESCRIPTION and RULES, the role's built-in policy.
scoped_token() {
  local description rules
  if [ "$#" -ge 4 ]; then
    description="$3"
    rules="$4"
  else
    description="$(known_policy "$1" description)"
    rules="$(known_policy "$1" rules)"
  fi
  fetch_secret "$2" "$WORK/secrets/scoped-$1.json"
  retry ensure_policy "$1" "$description" "$rules"
  retry ensure_token "$WORK/secrets/scoped-$1.json" "$1" "$description"
}

bootstrap_acl() {
  retry ensure_policy ${sh(AGENT_POLICY.name)} ${sh(AGENT_POLICY.description)} ${sh(AGENT_POLICY.rules)}
  retry ensure_token "$WORK/secrets/agent.json" ${sh(AGENT_POLICY.name)} ${sh(AGENT_POLICY.description)}
  scoped_tokens
}

# Mesh traffic from Lambda leaves through the local mesh gateway. Merged into the current entry with check-and-set,
# so what other parts put in proxy-defaults survives a server replacement.
ensure_proxy_defaults() {
  local current="$WORK/proxy-defaults.json" body="$WORK/proxy-defaults-body.json" code index
  code="$(consul_probe /v1/config/proxy-defaults/global "$current")" || return 1
  case "$code" in
    200)
      index="$(jq -er .ModifyIndex "$current")" || return 1
      jq '.MeshGateway.Mode = "local" | del(.CreateIndex, .ModifyIndex)' "$current" >"$body" || return 1
      ;;
    404)
      index=0
      printf '%s\\n' '{"Kind":"proxy-defaults","Name":"global","MeshGateway":{"Mode":"local"}}' >"$body"
      ;;
    *) log "reading proxy-defaults: HTTP $code" && return 1 ;;
  esac
  [[ "$(consul_api PUT "/v1/config?cas=$index" "$body")" == true ]]
}

install_maintenance() {
  snapshot_script >"$SNAPSHOT_SCRIPT_PATH"
  health_metric_script >"$HEALTH_SCRIPT_PATH"
  chmod 0750 "$SNAPSHOT_SCRIPT_PATH" "$HEALTH_SCRIPT_PATH"
${Object.entries(staticMaintenanceUnits()).map(([name, text]) => `  ${heredoc(text, unitDelimiter(name)).replace('cat <<', `cat >"$SYSTEMD_DIR/${name}" <<`)}`).join('\n')}
  snapshot_timer_unit >"$SYSTEMD_DIR/${SYSTEMD_UNIT_NAMES.snapshotTimer}"
  chmod 0644 "$SYSTEMD_DIR"/consul-snapshot.* "$SYSTEMD_DIR"/consul-health-metric.*
  systemctl daemon-reload
  systemctl enable --now ${SYSTEMD_UNIT_NAMES.snapshotTimer} ${SYSTEMD_UNIT_NAMES.healthTimer}
}

boot_main() {
  trap 'FAILED_LINE=$LINENO' ERR
  trap on_exit EXIT
  set -o errtrace
  WORK="$(mktemp -d)"
  STEP='installing packages'; install_packages
  STEP='starting the CloudWatch agent'; start_cloudwatch_agent
  STEP="installing Consul $CONSUL_VERSION"; install_consul
  STEP='preparing the host'; prepare_host
  STEP='reading secrets'; write_secrets
  STEP='writing the configuration'; write_config
  STEP='starting Consul'; start_consul
  STEP='waiting for a healthy cluster'; wait_for_cluster
  STEP='creating ACL policies and tokens'; bootstrap_acl
  STEP='setting proxy-defaults'; retry ensure_proxy_defaults
  STEP='installing the snapshot and health timers'; install_maintenance
  STEP='signalling CloudFormation'; cfn_signal true
  SIGNALLED=true
  log 'Consul server ready'
}

# ---------------------------------------------------------------------------------------------------------------
# Maintenance (run by the timers on every server; only the Raft leader acts)

begin_maintenance() {
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  jq -er .acl.tokens.initial_management "$CONFIG_DIR/secrets.json" >"$WORK/token"
  use_token
}

snapshot_main() {
  local self leader snapshot key
  begin_maintenance
  self="$(node_id)"
  leader="$(consul_api GET /v1/operator/autopilot/state | jq -er .Leader)"
  if [[ "$self" != "$leader" ]]; then
    log 'not the Raft leader: nothing to do'
    return 0
  fi
  snapshot="$WORK/consul.snap"
  consul snapshot save "$snapshot" >/dev/null
  consul snapshot inspect "$snapshot" >/dev/null
  key="\${SNAPSHOT_PREFIX}consul-\${DATACENTER}-$(date -u +%Y%m%dT%H%M%SZ).snap"
  # No --sse: with aws:kms and no key ID, S3 would use the AWS managed key (aws/s3) instead of the bucket's default
  # customer managed key.
  aws s3 cp "$snapshot" "s3://$SNAPSHOT_BUCKET/$key" --region "$REGION" --only-show-errors
  rm -f "$snapshot"
  log "saved s3://$SNAPSHOT_BUCKET/$key"
}

health_main() {
  local self state
  begin_maintenance
  state="$WORK/autopilot.json"
  self="$(node_id)"
  consul_api GET /v1/operator/autopilot/state >"$state"
  if [[ "$(jq -er .Leader "$state")" != "$self" ]]; then
    return 0
  fi
  jq --arg cluster "$CLUSTER_NAME" '
    ((.Voters // []) | length) as $voters
    | ([(.Voters // [])[] as $id | .Servers[$id] | select(.Healthy == true)] | length) as $healthy
    | [{MetricName: "${HEALTH_METRICS.healthyServers}", Value: $healthy}, {MetricName: "${HEALTH_METRICS.voters}", Value: $voters}]
    | map(. + {Unit: "Count", Dimensions: [{Name: "${HEALTH_METRICS.dimension}", Value: $cluster}]})' "$state" >"$WORK/metrics.json"
  aws cloudwatch put-metric-data --namespace "$METRIC_NAMESPACE" --region "$REGION" --metric-data "file://$WORK/metrics.json"
}
`;
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
      expected: `at most ${USER_DATA_LIMIT_BYTES} bytes, EC2's limit on raw user data: shorten descriptions or policy rules`,
    });
  }
}

/** Only what the script itself relies on; everything else is the construct's to validate. */
function checkInputs(inputs: ServerBootInputs): void {
  const fail = (field: string, given: unknown, expected: string): never => {
    throw new LambdaMeshError({ location: 'ServerBootInputs', field, given: describeValue(given), expected });
  };
  for (const [field, value] of [['serverCount', inputs.serverCount], ['healthyTimeoutSeconds', inputs.healthyTimeoutSeconds]] as const) {
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
  const known = (SCOPED_TOKEN_POLICIES as Readonly<Record<string, { readonly rules: string; readonly description: string } | undefined>>)[token.name];
  return known !== undefined && known.rules === token.policyRules && known.description === token.description;
}
