#!/usr/bin/env bash
# The mesh membership of an EC2 instance of a lambda-mesh service (MeshEc2Service): the app and its sidecar
# (consul-dataplane, Envoy) as Docker containers on the host network, the instance's IAM role as its Consul identity.
#
#   ec2-sidecar.sh install  install the systemd units that run the rest (once, from the user data)
#   ec2-sidecar.sh boot     install Docker, log in to Consul with the instance role (aws-iam auth method), register
#                           the service and its sidecar under the service's node, start the dataplane and the app
#   ec2-sidecar.sh health   report the app's and Envoy's health to Consul (run by a timer)
#   ec2-sidecar.sh stop     deregister and log out (run when the instance stops)
#
# Every deployment value comes from /etc/lambda-mesh/service.env (written by the user data); nothing secret is in
# it. The servers' CA comes from Secrets Manager, the token from the login: both live in /run/lambda-mesh (tmpfs,
# root only), never in an argument list. Software: Docker from Amazon Linux's signed repositories; the Consul and
# consul-dataplane images, and the app's, from ECR (the mesh's pull-through cache), as pinned by the deployment.
set -euo pipefail

ENV_FILE=${LAMBDA_MESH_ENV_FILE:-/etc/lambda-mesh/service.env}
RUN_DIR=${LAMBDA_MESH_RUN_DIR:-/run/lambda-mesh}
CONSUL_API_PORT=8501
CONSUL_GRPC_PORT=8503
SIDECAR_PORT=20000
ENVOY_READY_PORT=22000

log() {
  printf '{"component":"lambda-mesh-ec2-sidecar","msg":%s}\n' "$(jq -Rn --arg m "$*" '$m')" >&2
}

die() {
  log "$*"
  exit 1
}

load_env() {
  [[ -r "$ENV_FILE" ]] || die "no $ENV_FILE"
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  local name
  for name in SERVICE SERVICE_PORT NODE_NAME REGION CONSUL_ADDRESS SERVER_NAME AUTH_METHOD CA_SECRET_ARN REGISTRY \
    CONSUL_IMAGE DATAPLANE_IMAGE APP_IMAGE UPSTREAMS_JSON APP_ENV_JSON; do
    [[ -n "${!name:-}" ]] || die "$ENV_FILE does not set $name"
  done
}

# The instance's identity from IMDSv2.
imds() {
  local token
  token="$(curl -fsS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)"
  curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

instance_facts() {
  INSTANCE_ID="${INSTANCE_ID:-$(imds instance-id)}"
  PRIVATE_IP="${PRIVATE_IP:-$(imds local-ipv4)}"
  SERVICE_ID="$SERVICE-$INSTANCE_ID"
}

install_docker() {
  if ! command -v docker >/dev/null 2>&1; then
    # Amazon Linux's repositories: signed packages, reached through the S3 gateway endpoint.
    dnf install -y docker
  fi
  systemctl enable --now docker
}

fetch_ca() {
  install -d -m 0700 "$RUN_DIR"
  aws secretsmanager get-secret-value --region "$REGION" --secret-id "$CA_SECRET_ARN" --query SecretString --output text |
    jq -er .CertificatePem >"$RUN_DIR/ca.pem.tmp" || die "reading the servers' CA from $CA_SECRET_ARN failed"
  chmod 0644 "$RUN_DIR/ca.pem.tmp"
  mv "$RUN_DIR/ca.pem.tmp" "$RUN_DIR/ca.pem"
}

pull_images() {
  aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$REGISTRY" >/dev/null
  local image
  for image in "$CONSUL_IMAGE" "$DATAPLANE_IMAGE" "$APP_IMAGE"; do
    docker pull --quiet "$image" >/dev/null
    log "pulled $image as $(docker image inspect --format '{{index .RepoDigests 0}}' "$image")"
  done
}

# consul login with the instance role: Consul checks the signed STS and IAM requests and binds the role, by its
# service-name tag, to this service. -aws-include-entity lets Consul read the tags (the role may GetRole itself).
consul_login() {
  # As root in the container: the token goes into the root-only run directory. The host network reaches IMDSv2
  # (the instance role's credentials) within the launch template's hop limit of 1.
  docker run --rm --network host --read-only --user 0:0 -v "$RUN_DIR:$RUN_DIR" "$CONSUL_IMAGE" login \
    -type=aws-iam -method="$AUTH_METHOD" -aws-auto-bearer-token -aws-include-entity -aws-region="$REGION" \
    -aws-server-id-header-value="$SERVER_NAME" -meta "instance-id=$INSTANCE_ID" \
    -http-addr="https://$CONSUL_ADDRESS:$CONSUL_API_PORT" -tls-server-name="$SERVER_NAME" -ca-file="$RUN_DIR/ca.pem" \
    -token-sink-file="$RUN_DIR/token" >/dev/null || die "consul login with method $AUTH_METHOD failed"
  chmod 0600 "$RUN_DIR/token"
}

# consul_api METHOD PATH [BODY_FILE]: the HTTPS API of the servers, the token on stdin (never in argv). The servers'
# certificate names server.<dc>.consul, not the load balancer: connect to the balancer, verify the server name.
consul_api() {
  local scheme=${CONSUL_HTTP_SCHEME:-https} args=()
  [[ $# -ge 3 ]] && args=(--header 'Content-Type: application/json' --data-binary "@$3")
  printf 'header = "X-Consul-Token: %s"\n' "$(cat "$RUN_DIR/token")" | curl --config - \
    --fail --silent --show-error --max-time 10 --retry 5 --retry-connrefused --retry-delay 2 \
    --cacert "$RUN_DIR/ca.pem" --connect-to "$SERVER_NAME:$CONSUL_API_PORT:$CONSUL_ADDRESS:$CONSUL_API_PORT" \
    --request "$1" "${args[@]}" "$scheme://$SERVER_NAME:$CONSUL_API_PORT$2"
}

# The service and its sidecar, under the service's synthetic node (the auth method custom resource made it;
# SkipNodeUpdate: a service identity may not change the node). Health starts critical until the first check.
register() {
  local body="$RUN_DIR/register.json"
  # The registration starts critical: the next health report goes out whatever the last one said.
  rm -f "$RUN_DIR/health.state"
  jq -n --arg node "$NODE_NAME" --arg svc "$SERVICE" --arg id "$SERVICE_ID" --arg ip "$PRIVATE_IP" \
    --arg iid "$INSTANCE_ID" --argjson port "$SERVICE_PORT" '{
      Node: $node, SkipNodeUpdate: true,
      Service: {ID: $id, Service: $svc, Port: $port, Address: $ip, Meta: {"instance-id": $iid, "lambda-mesh-placement": "ec2"}},
      Check: {CheckID: "\($id):health", Name: "instance health", ServiceID: $id, Status: "critical", Output: "starting"}
    }' >"$body"
  [[ "$(consul_api PUT /v1/catalog/register "$body")" == true ]] || die "registering $SERVICE_ID failed"
  jq -n --arg node "$NODE_NAME" --arg svc "$SERVICE" --arg id "$SERVICE_ID" --arg ip "$PRIVATE_IP" \
    --argjson port "$SERVICE_PORT" --argjson public "$SIDECAR_PORT" --argjson upstreams "$UPSTREAMS_JSON" '{
      Node: $node, SkipNodeUpdate: true,
      Service: {
        Kind: "connect-proxy", ID: "\($id)-sidecar-proxy", Service: "\($svc)-sidecar-proxy", Port: $public, Address: $ip,
        Proxy: {
          DestinationServiceName: $svc, DestinationServiceID: $id, LocalServiceAddress: "127.0.0.1", LocalServicePort: $port,
          Upstreams: [$upstreams[] | {DestinationName: .name, LocalBindAddress: "127.0.0.1", LocalBindPort: .localPort}]
        }
      },
      Check: {CheckID: "\($id)-sidecar-proxy:health", Name: "instance health", ServiceID: "\($id)-sidecar-proxy", Status: "critical", Output: "starting"}
    }' >"$body"
  [[ "$(consul_api PUT /v1/catalog/register "$body")" == true ]] || die "registering $SERVICE_ID-sidecar-proxy failed"
  log "registered $SERVICE_ID and its sidecar under node $NODE_NAME"
}

start_containers() {
  docker rm -f consul-dataplane app >/dev/null 2>&1 || true
  umask 077
  printf 'DP_CREDENTIAL_STATIC_TOKEN=%s\n' "$(cat "$RUN_DIR/token")" >"$RUN_DIR/dataplane.env"
  local logging=(--log-driver awslogs --log-opt "awslogs-region=$REGION" --log-opt "awslogs-group=${LOG_GROUP:-}")
  [[ -n "${LOG_GROUP:-}" ]] || logging=()
  docker run -d --name consul-dataplane --restart on-failure --network host --read-only --user 5995 \
    --env-file "$RUN_DIR/dataplane.env" -v "$RUN_DIR/ca.pem:/consul/ca.pem:ro" "${logging[@]}" \
    "$DATAPLANE_IMAGE" -addresses "$CONSUL_ADDRESS" -grpc-port "$CONSUL_GRPC_PORT" -server-watch-disabled \
    -ca-certs /consul/ca.pem -tls-server-name "$SERVER_NAME" -credential-type static \
    -proxy-node-name "$NODE_NAME" -proxy-id "$SERVICE_ID-sidecar-proxy" \
    -envoy-ready-bind-address 127.0.0.1 -envoy-ready-bind-port "$ENVOY_READY_PORT" -log-json >/dev/null
  rm -f "$RUN_DIR/dataplane.env"
  local env_args=() command_args=()
  mapfile -t env_args < <(jq -r 'to_entries[] | "--env=\(.key)=\(.value)"' <<<"$APP_ENV_JSON")
  if [[ -n "${APP_COMMAND_JSON:-}" ]]; then
    mapfile -t command_args < <(jq -r '.[]' <<<"$APP_COMMAND_JSON")
  fi
  docker run -d --name app --restart on-failure --network host --read-only "${env_args[@]}" "${logging[@]}" \
    "$APP_IMAGE" "${command_args[@]}" >/dev/null
  log "started consul-dataplane and the app"
}

# health: the app (HTTP path, a command in its container, or a TCP connect) and Envoy's readiness; reported only
# when it changes, as health-sync does on ECS, on the service and on its sidecar proxy: Consul routes mesh traffic by
# the proxy's own checks, and a catalog node has no agent to run alias checks.
app_healthy() {
  if [[ -n "${HEALTH_PATH:-}" ]]; then
    curl -fsS -o /dev/null -m 3 "http://127.0.0.1:$SERVICE_PORT$HEALTH_PATH"
  elif [[ -n "${HEALTH_COMMAND_JSON:-}" ]]; then
    local command=()
    mapfile -t command < <(jq -r '.[]' <<<"$HEALTH_COMMAND_JSON")
    timeout 5 docker exec app "${command[@]}" >/dev/null
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SERVICE_PORT"
  fi
}

report_health() {
  local status=passing output="app and sidecar healthy" state="$RUN_DIR/health.state" body="$RUN_DIR/health.json"
  if ! curl -fsS -o /dev/null -m 3 "http://127.0.0.1:$ENVOY_READY_PORT/ready"; then
    status=critical output="the sidecar (Envoy) is not ready"
  elif ! app_healthy; then
    status=critical output="the app's health check failed"
  fi
  if [[ -f "$state" && "$(cat "$state")" == "$status" ]]; then
    return 0
  fi
  jq -n --arg node "$NODE_NAME" --arg id "$SERVICE_ID" --arg status "$status" --arg output "$output" '{
    Node: $node, SkipNodeUpdate: true,
    Checks: [
      {CheckID: "\($id):health", Name: "instance health", ServiceID: $id, Status: $status, Output: $output},
      {CheckID: "\($id)-sidecar-proxy:health", Name: "instance health", ServiceID: "\($id)-sidecar-proxy", Status: $status, Output: $output}
    ]
  }' >"$body"
  [[ "$(consul_api PUT /v1/catalog/register "$body")" == true ]] || die "reporting health of $SERVICE_ID failed"
  printf '%s' "$status" >"$state"
  log "health of $SERVICE_ID: $status ($output)"
}

deregister() {
  local body="$RUN_DIR/deregister.json" id
  for id in "$SERVICE_ID-sidecar-proxy" "$SERVICE_ID"; do
    jq -n --arg node "$NODE_NAME" --arg id "$id" '{Node: $node, ServiceID: $id}' >"$body"
    consul_api PUT /v1/catalog/deregister "$body" >/dev/null || log "deregistering $id failed"
  done
  # The login token goes with the instance.
  consul_api POST /v1/acl/logout >/dev/null || log "logout failed"
  rm -f "$RUN_DIR/token"
  docker rm -f app consul-dataplane >/dev/null 2>&1 || true
}

SCRIPT_PATH=${LAMBDA_MESH_SCRIPT_PATH:-/usr/local/lib/lambda-mesh/ec2-sidecar.sh}
SYSTEMD_DIR=${LAMBDA_MESH_SYSTEMD_DIR:-/etc/systemd/system}

# boot at every start (the login token and the CA live on tmpfs), stop before shutdown, health every 10 s.
install_units() {
  cat >"$SYSTEMD_DIR/lambda-mesh-sidecar.service" <<UNIT
[Unit]
Description=lambda-mesh: log in to Consul, register $SERVICE and start its sidecar and app
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$SCRIPT_PATH boot
ExecStop=$SCRIPT_PATH stop
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
UNIT
  cat >"$SYSTEMD_DIR/lambda-mesh-health.service" <<UNIT
[Unit]
Description=lambda-mesh: report the health of $SERVICE to Consul
Requires=lambda-mesh-sidecar.service
After=lambda-mesh-sidecar.service

[Service]
Type=oneshot
ExecStart=$SCRIPT_PATH health
UNIT
  cat >"$SYSTEMD_DIR/lambda-mesh-health.timer" <<UNIT
[Unit]
Description=lambda-mesh: health of $SERVICE every 10 seconds

[Timer]
OnActiveSec=10s
OnUnitActiveSec=10s
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
  chmod 0644 "$SYSTEMD_DIR"/lambda-mesh-*
  systemctl daemon-reload
  systemctl enable lambda-mesh-sidecar.service lambda-mesh-health.timer
  systemctl start --no-block lambda-mesh-sidecar.service lambda-mesh-health.timer
}

main() {
  load_env
  if [[ "${1:-}" == install ]]; then
    install_units
    return
  fi
  instance_facts
  case "${1:-}" in
    boot)
      install_docker
      fetch_ca
      pull_images
      consul_login
      register
      start_containers
      ;;
    health) report_health ;;
    stop) deregister ;;
    *) die "usage: ec2-sidecar.sh install|boot|health|stop" ;;
  esac
}

# Sourced by the tests, which call the functions one by one.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
