import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { gunzipSync } from 'zlib';
import { LambdaMeshError } from '../../../constructs/core';
import { SCOPED_TOKEN_POLICIES } from '../../../constructs/consul/private/acl-policies';
import { serverAgentConfig } from '../../../constructs/consul/private/agent-config';
import {
  HASHICORP_PACKAGE_SIGNING_KEY_FINGERPRINT, SERVER_FILES, USER_DATA_LIMIT_BYTES,
  cloudWatchAgentConfig, consulServerLibrary, healthMetricScript, serverUserData, snapshotScript, systemdUnits,
} from '../../../constructs/consul/private/scripts';
import { ConsulTokenRole } from '../../../constructs/consul/types';
import { thrownBy } from '../../util';
import { findSecretMaterial } from '../../harness/secret-scan';
import { ACCOUNT, arn, sampleBootInputs } from './fixtures';

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

const inputs = sampleBootInputs;

const S3_SOURCE = { kind: 's3', bucket: 'lambda-mesh-artifacts', key: 'consul/consul-1.21.7-1.x86_64.rpm', sha256: 'ab'.repeat(32) } as const;

/** The values of the secrets, as the stand-in Secrets Manager returns them. None may reach argv or the scripts. */
const SECRETS = {
  gossip: 'pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=',
  caPem: '-----BEGIN CERTIFICATE-----\nMIIBtestCA\n-----END CERTIFICATE-----\n',
  serverPem: '-----BEGIN CERTIFICATE-----\nMIIBtestServer\n-----END CERTIFICATE-----\n',
  serverKey: '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEItestKey\n-----END EC PRIVATE KEY-----\n',
  management: { AccessorID: '9a8b7c6d-1111-4e5f-8a9b-0c1d2e3f4a5b', SecretID: 'f1e2d3c4-2222-4b5a-9c8d-7e6f5a4b3c2d' },
  agent: { AccessorID: '0b1c2d3e-3333-4f5a-8b6c-7d8e9f0a1b2c', SecretID: 'c3d4e5f6-4444-4a7b-8c9d-0e1f2a3b4c5d' },
  scoped: Object.fromEntries(Object.values(ConsulTokenRole).map((role, i) => [role, {
    AccessorID: `${i}${i}aa0000-5555-4000-8000-00000000000${i}`,
    SecretID: `${i}${i}bb0000-6666-4000-8000-00000000000${i}`,
  }])) as Record<ConsulTokenRole, { AccessorID: string; SecretID: string }>,
};

function secretValues(): Record<string, string> {
  const i = inputs();
  return {
    [i.secrets.gossipKey]: JSON.stringify({ GossipKey: SECRETS.gossip }),
    [i.secrets.caCertificate]: JSON.stringify({ CertificatePem: SECRETS.caPem }),
    [i.secrets.serverCertificate]: JSON.stringify({ CertificatePem: SECRETS.serverPem, PrivateKeyPem: SECRETS.serverKey }),
    [i.secrets.managementToken]: JSON.stringify(SECRETS.management),
    [i.secrets.agentToken]: JSON.stringify(SECRETS.agent),
    ...Object.fromEntries(i.scopedTokens.map((t) => [t.secretArn, JSON.stringify(SECRETS.scoped[t.name as ConsulTokenRole])])),
  };
}

/** Every secret value a script handles, to look for in argv. */
const ALL_SECRET_STRINGS = [
  SECRETS.gossip, 'MIIBtestServer', 'MHcCAQEEItestKey', SECRETS.management.SecretID, SECRETS.agent.SecretID,
  ...Object.values(SECRETS.scoped).map((t) => t.SecretID),
];

// ---------------------------------------------------------------------------------------------------------------
// Secret-shaped values

/** Values that look like secrets (the harness's scan, shared with the template tests). */
const secretLikeValues = findSecretMaterial;

/** The user data with its embedded library decoded (base64 hides nothing from the scan). */
function decodedUserData(userData: string): { library: string; rest: string; digest: string } {
  const m = /base64 -d <<'LAMBDA_MESH_LIBRARY' \| gunzip >\S+\n([A-Za-z0-9+/=\n]+)\nLAMBDA_MESH_LIBRARY\nprintf '%s {2}%s\\n' ([0-9a-f]{64}) /.exec(userData);
  if (!m) {
    throw new Error('no embedded library in the user data');
  }
  return { library: gunzipSync(Buffer.from(m[1].replace(/\n/g, ''), 'base64')).toString(), rest: userData.replace(m[1], ''), digest: m[2] };
}

// ---------------------------------------------------------------------------------------------------------------
// Running scripts with stand-in CLIs

interface Route { readonly status: number; readonly body?: unknown }
interface Call { readonly cmd: string; readonly argv: string[] }
interface Request { readonly method: string; readonly path: string; readonly body: unknown; readonly headers: string }

/**
 * A sandbox with stand-in `curl`, `aws`, `consul`, `cfn-signal`, `rpm` and `dnf` first on PATH. Each records its
 * argv (and consul its environment); curl answers from `routes` ("METHOD /path" -> status and body) and records
 * requests; aws returns `secrets` by ARN, records uploads and metric data.
 */
class Sandbox {
  public readonly dir = mkdtempSync(join(tmpdir(), 'consul-scripts-'));
  private readonly bin = join(this.dir, 'bin');

  constructor(routes: Record<string, Route> = {}, secrets: Record<string, string> = {}) {
    spawnSync('mkdir', ['-p', this.bin, join(this.dir, 'etc/tls'), join(this.dir, 'systemd')]);
    writeFileSync(join(this.dir, 'routes.json'), JSON.stringify(routes));
    writeFileSync(join(this.dir, 'secrets.json'), JSON.stringify(secrets));
    writeFileSync(join(this.dir, 'etc/tls/ca.pem'), SECRETS.caPem);
    const record = (cmd: string): string => `jq -cn --arg cmd ${cmd} '{cmd: $cmd, argv: $ARGS.positional}' --args -- "$@" >>"$STUB_DIR/calls.jsonl"`;
    this.stub('curl', `${record('curl')}
method=GET url= out= wout= data= fail=false headers=
while (($#)); do
  case "$1" in
    --request) method="$2"; shift 2 ;;
    --output) out="$2"; shift 2 ;;
    --write-out) wout="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --header) if [[ "$2" == @* ]]; then headers="$(cat "\${2#@}")"; fi; shift 2 ;;
    --cacert) [[ -f "$2" ]] || exit 77; shift 2 ;;
    --fail) fail=true; shift ;;
    https://*) url="$1"; shift ;;
    *) shift ;;
  esac
done
path="\${url#https://127.0.0.1:8501}"
body=null
if [[ "$data" == @* ]]; then body="$(jq -c . "\${data#@}" 2>/dev/null || jq -Rsc . "\${data#@}")"; fi
jq -cn --arg m "$method" --arg p "$path" --argjson b "$body" --arg h "$headers" '{method: $m, path: $p, body: $b, headers: $h}' >>"$STUB_DIR/requests.jsonl"
# Unrouted: reads find nothing, writes succeed.
route="$(jq -c --arg k "$method $path" --arg m "$method" '.[$k] // if $m == "GET" then {status: 404, body: "not found"} else {status: 200, body: {}} end' "$STUB_DIR/routes.json")"
status="$(jq -r .status <<<"$route")"
if $fail && ((status >= 400)); then echo "curl: (22) The requested URL returned error: $status" >&2; exit 22; fi
if [[ -n "$out" ]]; then jq -r '.body | if type == "string" then . else tojson end' <<<"$route" >"$out"; else jq -r '.body | if type == "string" then . else tojson end' <<<"$route"; fi
if [[ -n "$wout" ]]; then printf '%s' "$status"; fi
`);
    this.stub('aws', `${record('aws')}
case "$1 $2" in
  'secretsmanager get-secret-value')
    jq -er --arg id "$4" '.[$id]' "$STUB_DIR/secrets.json" || { echo "no such secret $4" >&2; exit 254; } ;;
  's3 cp')
    if [[ -f "$3" ]]; then cp "$3" "$STUB_DIR/uploaded"; fi ;;
  'cloudwatch put-metric-data')
    for arg in "$@"; do if [[ "$arg" == file://* ]]; then cp "\${arg#file://}" "$STUB_DIR/metric-data.json"; fi; done ;;
esac
`);
    this.stub('consul', `${record('consul')}
jq -cn --arg token "\${CONSUL_HTTP_TOKEN:-}" --arg file "\${CONSUL_HTTP_TOKEN_FILE:-}" --arg addr "\${CONSUL_HTTP_ADDR:-}" --arg ca "\${CONSUL_CACERT:-}" \\
  --arg fileToken "$(cat "\${CONSUL_HTTP_TOKEN_FILE:-/dev/null}")" '{token: $token, file: $file, fileToken: $fileToken, addr: $addr, ca: $ca}' >>"$STUB_DIR/consul-env.jsonl"
case "$1 $2" in
  'snapshot save') echo 'raft snapshot' >"$3" ;;
  'snapshot inspect') [[ -s "$3" ]] ;;
esac
`);
    for (const cmd of ['cfn-signal', 'rpm', 'dnf']) {
      this.stub(cmd, record(cmd));
    }
  }

  /** Runs `body` in bash after sourcing the library (and `prelude`), with the sandbox's paths. */
  public run(body: string, prelude = ''): { status: number; stderr: string; stdout: string } {
    writeFileSync(join(this.dir, 'library.sh'), consulServerLibrary());
    const script = `source ${join(this.dir, 'library.sh')}
${prelude}
CONFIG_DIR=${join(this.dir, 'etc')}
SYSTEMD_DIR=${join(this.dir, 'systemd')}
CONSUL_GROUP=$(id -gn)
CFN_SIGNAL=cfn-signal
POLL_SECONDS=0
${body}
`;
    const result = spawnSync('bash', ['-c', script], {
      env: { PATH: `${this.bin}:${process.env.PATH ?? ''}`, STUB_DIR: this.dir, HOME: this.dir, TMPDIR: this.dir },
      encoding: 'utf8',
    });
    return { status: result.status ?? -1, stderr: result.stderr, stdout: result.stdout };
  }

  public calls(cmd?: string): Call[] {
    return this.jsonl<Call>('calls.jsonl').filter((c) => cmd === undefined || c.cmd === cmd);
  }

  public requests(): Request[] {
    return this.jsonl<Request>('requests.jsonl');
  }

  public consulEnv(): Array<Record<string, string>> {
    return this.jsonl<Record<string, string>>('consul-env.jsonl');
  }

  public file(path: string): string {
    return readFileSync(join(this.dir, path), 'utf8');
  }

  public mode(path: string): string {
    return (statSync(join(this.dir, path)).mode & 0o777).toString(8);
  }

  /** Work directories the scripts left behind (mktemp creates them under TMPDIR). */
  public leftovers(): string[] {
    return readdirSync(this.dir).filter((f) => f.startsWith('tmp.'));
  }

  public dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private stub(name: string, body: string): void {
    const path = join(this.bin, name);
    writeFileSync(path, `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`);
    chmodSync(path, 0o755);
  }

  private jsonl<T>(file: string): T[] {
    const path = join(this.dir, file);
    return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : [];
  }
}

/** The part of the user data after the embedded library: the values and payload functions, without `boot_main`. */
function userDataValues(userData: string): string {
  const lines = userData.split('\n');
  const start = lines.indexOf(`source ${SERVER_FILES.library}`);
  expect(start).toBeGreaterThan(0);
  expect(lines.slice(-2)).toEqual(['boot_main', '']);
  return lines.slice(start + 1, -2).join('\n');
}

let sandbox: Sandbox;
afterEach(() => sandbox?.dispose());

const autopilotState = (leader: string, servers: Record<string, { healthy: boolean; voter: boolean }>): Record<string, unknown> => ({
  Healthy: Object.values(servers).every((s) => s.healthy),
  FailureTolerance: 1,
  Leader: leader,
  Voters: Object.entries(servers).filter(([, s]) => s.voter).map(([id]) => id),
  Servers: Object.fromEntries(Object.entries(servers).map(([id, s]) => [id, {
    ID: id, Name: `ip-${id}`, Address: `10.0.0.${id.length}:8300`, NodeStatus: 'alive', Healthy: s.healthy,
    Status: id === leader ? 'leader' : s.voter ? 'voter' : 'non-voter',
  }])),
});
const SELF = 'a1b2c3d4-0000-4000-8000-000000000001';
const OTHER = 'a1b2c3d4-0000-4000-8000-000000000002';
const THIRD = 'a1b2c3d4-0000-4000-8000-000000000003';
const FOURTH = 'a1b2c3d4-0000-4000-8000-000000000004';
const agentSelf: Route = { status: 200, body: { Config: { NodeID: SELF, NodeName: 'ip-10-0-0-1', Datacenter: 'dc1' } } };

// ---------------------------------------------------------------------------------------------------------------

/** The library as shipped, with its placeholders (constructs/consul/scripts/server-library.sh). */
const LIBRARY_SOURCE = join(__dirname, '..', '..', '..', 'constructs', 'consul', 'scripts', 'server-library.sh');

describe('generated scripts', () => {
  const scripts: Record<string, string> = {
    'user data (HashiCorp repository)': serverUserData(inputs()),
    'user data (RPM from S3)': serverUserData(inputs({ packageSource: S3_SOURCE })),
    'library': consulServerLibrary(),
    'library source, placeholders unfilled': readFileSync(LIBRARY_SOURCE, 'utf8'),
    'snapshot script': snapshotScript(inputs()),
    'health metric script': healthMetricScript(inputs()),
  };

  test.each(Object.entries(scripts))('%s: starts with the bash shebang and strict mode', (_name, script) => {
    expect(script.startsWith('#!/usr/bin/env bash\nset -euo pipefail\n')).toBe(true);
  });

  test.each(Object.entries(scripts))('%s: shellcheck -s bash -S style passes', (_name, script) => {
    const version = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
    if (version.error || version.status !== 0) {
      throw new Error('shellcheck is not installed; the scripts must be checked: apt-get install -y shellcheck');
    }
    const result = spawnSync('shellcheck', ['-s', 'bash', '-S', 'style', '-'], { input: script, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test.each(Object.entries(scripts))('%s: no secret-shaped value', (_name, script) => {
    const text = script.includes('LAMBDA_MESH_LIBRARY') ? Object.values(decodedUserData(script)).join('\n') : script;
    expect(secretLikeValues(text)).toEqual([]);
  });

  test('the library is its shipped source, line for line, with every placeholder filled', () => {
    const source = readFileSync(LIBRARY_SOURCE, 'utf8');
    const library = consulServerLibrary();
    expect(source).toMatch(/@@[A-Z][A-Z0-9_]*@@/);
    expect(library).not.toContain('@@');
    // The source's lines without a placeholder are the library's, in the same order.
    const rendered = library.split('\n');
    let at = 0;
    const missing = source.split('\n').filter((line) => !line.includes('@@')).filter((line) => {
      const found = rendered.indexOf(line, at);
      at = found < 0 ? at : found + 1;
      return found < 0;
    });
    expect(missing).toEqual([]);
    expect(library).toContain(`SNAPSHOT_SCRIPT_PATH=${SERVER_FILES.snapshotScript}\n`);
    expect(library).toContain(`HASHICORP_KEY_FINGERPRINT=${HASHICORP_PACKAGE_SIGNING_KEY_FINGERPRINT}\n`);
  });

  test('the secret scan finds a planted PEM block, token and gossip key', () => {
    const userData = serverUserData(inputs());
    const planted = [
      `${userData}\ncat >/etc/consul.d/tls/server-key.pem <<'EOF'\n${SECRETS.serverKey}EOF\n`,
      userData.replace("REGION='eu-west-1'", `REGION='eu-west-1'\nCONSUL_HTTP_TOKEN='${SECRETS.management.SecretID}'`),
      userData.replace('"encrypt_verify_incoming"', `"encrypt":"${SECRETS.gossip}","encrypt_verify_incoming"`),
    ];
    expect(planted.map((p) => secretLikeValues(Object.values(decodedUserData(p)).join('\n')))).toEqual([
      ['-----BEGIN EC PRIVATE KEY-----'],
      [SECRETS.management.SecretID],
      [SECRETS.gossip],
    ]);
  });

  test('the library is plain ASCII and holds no deployment value', () => {
    const library = consulServerLibrary();
    expect(library).toMatch(/^[\t\n -~]*$/);
    for (const value of [ACCOUNT, 'eu-west-1', 'dc1', '1.21.7', 'LambdaMeshConsulStack']) {
      expect(library).not.toContain(value);
    }
  });
});

describe('serverUserData', () => {
  test('embeds the library, checked against its SHA-256 before it is sourced', () => {
    const userData = serverUserData(inputs());
    const { library, digest } = decodedUserData(userData);
    expect(library).toBe(consulServerLibrary());
    expect(digest).toBe(createHash('sha256').update(consulServerLibrary()).digest('hex'));
    expect(userData.indexOf('sha256sum --check')).toBeLessThan(userData.indexOf(`source ${SERVER_FILES.library}`));
  });

  test('fits in EC2 user data with realistic values, with room to spare', () => {
    for (const packageSource of [inputs().packageSource, S3_SOURCE]) {
      expect(Buffer.byteLength(serverUserData(inputs({ packageSource })))).toBeLessThan(USER_DATA_LIMIT_BYTES - 2048);
    }
  });

  test('fails when the user data would not fit', () => {
    const huge = inputs({ scopedTokens: [{ name: 'big', secretArn: arn('Big'), description: 'd', policyRules: 'service_prefix "" {\n  policy = "read"\n}\n'.repeat(300) }] });
    const e = thrownBy(() => serverUserData(huge), (x): x is LambdaMeshError => LambdaMeshError.isLambdaMeshError(x));
    expect(e.field).toBe('userData');
    expect(e.expected).toMatch(/16384/);
  });

  test('counts a token as a long value when it checks the size', () => {
    const manyTokens = inputs({
      scopedTokens: Array.from({ length: 40 }, (_, i) => ({ name: `t${i}`, secretArn: '${Token[TOKEN.' + String(i) + ']}', description: '', policyRules: '' })),
    });
    expect(() => serverUserData(manyTokens)).toThrow(/tokens counted as 256 bytes/);
  });

  test('fails on a scoped token name that cannot go into a URL path, or a duplicate', () => {
    const bad = (name: string): LambdaMeshError => thrownBy(
      () => serverUserData(inputs({ scopedTokens: [{ name, secretArn: arn('X'), description: '', policyRules: '' }] })),
      (x): x is LambdaMeshError => LambdaMeshError.isLambdaMeshError(x));
    expect(bad('a/b').field).toBe('scopedTokens[0].name');
    expect(bad('consul-server-agent').expected).toMatch(/no other policy/);
  });

  test('fails on a server count or timeout that is not a positive integer', () => {
    expect(() => serverUserData(inputs({ serverCount: 0 }))).toThrow(/serverCount: given 0, expected a positive integer/);
    expect(() => serverUserData(inputs({ healthyTimeoutSeconds: 1.5 }))).toThrow(/healthyTimeoutSeconds/);
  });

  test('quotes values so that nothing in them expands', () => {
    const userData = serverUserData(inputs({ signal: { stackName: "it's $(rm -rf /)", resourceLogicalId: 'R' } }));
    expect(userData).toContain(`STACK_NAME='it'\\''s $(rm -rf /)'`);
  });

  test('writes consul.json exactly as serverAgentConfig renders it', () => {
    sandbox = new Sandbox();
    const r = sandbox.run('consul_json', userDataValues(serverUserData(inputs())));
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(JSON.stringify(serverAgentConfig(inputs()))));
  });

  test('the payload functions return the maintenance scripts, the snapshot timer and the CloudWatch agent configuration', () => {
    sandbox = new Sandbox();
    const values = userDataValues(serverUserData(inputs()));
    expect(sandbox.run('snapshot_script', values).stdout).toBe(snapshotScript(inputs()));
    expect(sandbox.run('health_metric_script', values).stdout).toBe(healthMetricScript(inputs()));
    expect(sandbox.run('snapshot_timer_unit', values).stdout).toBe(systemdUnits(inputs())['consul-snapshot.timer']);
    expect(sandbox.run('cloudwatch_agent_json', values).stdout).toBe(cloudWatchAgentConfig(inputs()));
  });

  describe('with stand-in consul/aws CLIs', () => {
    const bootPrelude = (routes: Record<string, Route> = {}): string => {
      sandbox = new Sandbox(routes, secretValues());
      return userDataValues(serverUserData(inputs()));
    };
    const boot = (body: string, routes?: Record<string, Route>): ReturnType<Sandbox['run']> => {
      const values = bootPrelude(routes);
      return sandbox.run(`WORK="$(mktemp -d)"\nwrite_secrets\n${body}`, values);
    };

    test('writes the TLS files and secrets.json from Secrets Manager, 0640, with only documented keys', () => {
      const r = boot('');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(sandbox.file('etc/tls/ca.pem')).toBe(SECRETS.caPem);
      expect(sandbox.file('etc/tls/server.pem')).toBe(SECRETS.serverPem);
      expect(sandbox.file('etc/tls/server-key.pem')).toBe(SECRETS.serverKey);
      expect(JSON.parse(sandbox.file('etc/secrets.json'))).toEqual({
        encrypt: SECRETS.gossip,
        acl: { tokens: { initial_management: SECRETS.management.SecretID, agent: SECRETS.agent.SecretID } },
      });
      for (const f of ['etc/tls/ca.pem', 'etc/tls/server.pem', 'etc/tls/server-key.pem', 'etc/secrets.json']) {
        expect(sandbox.mode(f)).toBe('640');
      }
      expect(sandbox.calls('aws').map((c) => c.argv)).toContainEqual(
        ['secretsmanager', 'get-secret-value', '--secret-id', inputs().secrets.gossipKey, '--query', 'SecretString', '--output', 'text', '--region', 'eu-west-1']);
    });

    test('fails when a secret lacks a field', () => {
      sandbox = new Sandbox({}, { ...secretValues(), [inputs().secrets.agentToken]: JSON.stringify({ AccessorID: 'x' }) });
      const r = sandbox.run('WORK="$(mktemp -d)"\nwrite_secrets', userDataValues(serverUserData(inputs())));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/a secret lacks a field/);
      expect(existsSync(join(sandbox.dir, 'etc/secrets.json'))).toBe(false);
    });

    test('creates the agent and scoped policies and tokens when none exists', () => {
      const r = boot('bootstrap_acl');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const writes = sandbox.requests().filter((q) => q.method !== 'GET');
      const policies = writes.filter((q) => q.path === '/v1/acl/policy').map((q) => q.body as Record<string, string>);
      expect(policies.map((p) => p.Name)).toEqual(['consul-server-agent', ...Object.values(ConsulTokenRole)]);
      expect(policies[1]).toEqual({
        Name: ConsulTokenRole.INTENTIONS_WRITER,
        Description: SCOPED_TOKEN_POLICIES[ConsulTokenRole.INTENTIONS_WRITER].description,
        Rules: SCOPED_TOKEN_POLICIES[ConsulTokenRole.INTENTIONS_WRITER].rules,
      });
      const tokens = writes.filter((q) => q.path === '/v1/acl/token').map((q) => q.body);
      expect(tokens).toEqual([
        { ...SECRETS.agent, Description: expect.any(String) as string, Policies: [{ Name: 'consul-server-agent' }] },
        ...Object.values(ConsulTokenRole).map((role) => ({
          ...SECRETS.scoped[role], Description: SCOPED_TOKEN_POLICIES[role].description, Policies: [{ Name: role }],
        })),
      ]);
      expect(writes).toHaveLength(2 + 2 * Object.values(ConsulTokenRole).length);
    });

    test('updates existing policies and tokens in place, keeping their IDs', () => {
      const routes: Record<string, Route> = {
        'GET /v1/acl/policy/name/consul-server-agent': { status: 200, body: { ID: 'p-agent', Name: 'consul-server-agent' } },
        [`GET /v1/acl/token/${SECRETS.agent.AccessorID}`]: { status: 200, body: { ...SECRETS.agent, Policies: [] } },
        ...Object.fromEntries(Object.values(ConsulTokenRole).flatMap((role) => [
          [`GET /v1/acl/policy/name/${role}`, { status: 200, body: { ID: `p-${role}`, Name: role } }],
          [`GET /v1/acl/token/${SECRETS.scoped[role].AccessorID}`, { status: 200, body: { ...SECRETS.scoped[role] } }],
        ])),
      };
      const r = boot('bootstrap_acl', routes);
      expect(r.status).toBe(0);
      const writes = sandbox.requests().filter((q) => q.method !== 'GET');
      expect(writes.map((q) => `${q.method} ${q.path}`)).toEqual([
        'PUT /v1/acl/policy/p-agent',
        `PUT /v1/acl/token/${SECRETS.agent.AccessorID}`,
        ...Object.values(ConsulTokenRole).flatMap((role) => [`PUT /v1/acl/policy/p-${role}`, `PUT /v1/acl/token/${SECRETS.scoped[role].AccessorID}`]),
      ]);
      // An update never sends the SecretID (immutable) again.
      expect(writes[1].body).toEqual({ Description: expect.any(String) as string, Policies: [{ Name: 'consul-server-agent' }] });
    });

    test('replaces a token whose SecretID was rotated', () => {
      const accessor = SECRETS.agent.AccessorID;
      const r = boot('ensure_token "$WORK/secrets/agent.json" consul-server-agent d', {
        [`GET /v1/acl/token/${accessor}`]: { status: 200, body: { AccessorID: accessor, SecretID: '00000000-0000-4000-8000-000000000000' } },
      });
      expect(r.status).toBe(0);
      expect(sandbox.requests().filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path}`)).toEqual([
        `DELETE /v1/acl/token/${accessor}`, 'PUT /v1/acl/token',
      ]);
    });

    test('retries, then fails, when Consul refuses a write', () => {
      const r = boot('retry ensure_policy p d r', { 'PUT /v1/acl/policy': { status: 500, body: 'rpc error' } });
      expect(r.status).not.toBe(0);
      expect(sandbox.requests().filter((q) => q.method === 'PUT')).toHaveLength(5);
    });

    test('sends the management token in a header file only, never in argv', () => {
      const r = boot('bootstrap_acl\nretry ensure_proxy_defaults', { 'PUT /v1/config?cas=0': { status: 200, body: true } });
      expect(r.status).toBe(0);
      const argv = JSON.stringify(sandbox.calls());
      for (const secret of ALL_SECRET_STRINGS) {
        expect(argv).not.toContain(secret);
      }
      expect(sandbox.requests().every((q) => q.headers === `X-Consul-Token: ${SECRETS.management.SecretID}`)).toBe(true);
      expect(sandbox.calls('curl').every((c) => c.argv.includes('--cacert'))).toBe(true);
    });

    test('creates proxy-defaults with the local mesh gateway mode when there is none', () => {
      const r = boot('retry ensure_proxy_defaults', { 'PUT /v1/config?cas=0': { status: 200, body: true } });
      expect(r.status).toBe(0);
      expect(sandbox.requests().filter((q) => q.method === 'PUT')).toEqual([
        expect.objectContaining({ path: '/v1/config?cas=0', body: { Kind: 'proxy-defaults', Name: 'global', MeshGateway: { Mode: 'local' } } }),
      ]);
    });

    test('merges the mesh gateway mode into existing proxy-defaults, check-and-set on its index', () => {
      const current = { Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' }, MeshGateway: { Mode: 'remote' }, CreateIndex: 7, ModifyIndex: 42 };
      const r = boot('retry ensure_proxy_defaults', {
        'GET /v1/config/proxy-defaults/global': { status: 200, body: current },
        'PUT /v1/config?cas=42': { status: 200, body: true },
      });
      expect(r.status).toBe(0);
      expect(sandbox.requests().filter((q) => q.method === 'PUT').map((q) => q.body)).toEqual([
        { Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' }, MeshGateway: { Mode: 'local' } },
      ]);
    });

    test('retries proxy-defaults when the check-and-set loses a race', () => {
      const r = boot('retry ensure_proxy_defaults', { 'PUT /v1/config?cas=0': { status: 200, body: false } });
      expect(r.status).not.toBe(0);
      expect(sandbox.requests().filter((q) => q.method === 'PUT')).toHaveLength(5);
    });

    test('waits for a healthy cluster with enough voters including this server', () => {
      const healthy = autopilotState(OTHER, { [SELF]: { healthy: true, voter: true }, [OTHER]: { healthy: true, voter: true }, [THIRD]: { healthy: true, voter: true } });
      const r = boot('wait_for_cluster', { 'GET /v1/agent/self': agentSelf, 'GET /v1/operator/autopilot/state': { status: 200, body: healthy } });
      expect(r.status).toBe(0);
    });

    test.each([
      ['unhealthy', { [SELF]: { healthy: true, voter: true }, [OTHER]: { healthy: false, voter: true }, [THIRD]: { healthy: true, voter: true } }],
      ['too few voters', { [SELF]: { healthy: true, voter: true }, [OTHER]: { healthy: true, voter: true } }],
      ['this server not a voter yet', { [SELF]: { healthy: true, voter: false }, [OTHER]: { healthy: true, voter: true }, [THIRD]: { healthy: true, voter: true }, [FOURTH]: { healthy: true, voter: true } }],
    ])('gives up after the timeout when the cluster is %s', (_case, servers) => {
      const r = boot('HEALTHY_TIMEOUT_SECONDS=0\nwait_for_cluster', {
        'GET /v1/agent/self': agentSelf, 'GET /v1/operator/autopilot/state': { status: 200, body: autopilotState(OTHER, servers) },
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/no healthy cluster of 3 voters including this server after 0s/);
    });

    test('a failed boot signals failure to CloudFormation, naming the step', () => {
      sandbox = new Sandbox();
      const r = sandbox.run("trap on_exit EXIT\nWORK=\"$(mktemp -d)\"\nSTEP='starting Consul'\nfalse", userDataValues(serverUserData(inputs())));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/FAILED \(exit 1, line \S+\) while starting Consul/);
      expect(sandbox.calls('cfn-signal').map((c) => c.argv)).toEqual([
        ['--success', 'false', '--stack', 'LambdaMeshConsulStack-prod', '--resource', 'ConsulServersASG46ED3070', '--region', 'eu-west-1'],
      ]);
      expect(sandbox.leftovers()).toEqual([]);
    });

    test('an unset variable (no ERR trap) still signals failure', () => {
      sandbox = new Sandbox();
      const r = sandbox.run('trap on_exit EXIT\necho "$NOT_SET_ANYWHERE"', userDataValues(serverUserData(inputs())));
      expect(r.status).not.toBe(0);
      expect(sandbox.calls('cfn-signal')[0].argv.slice(0, 2)).toEqual(['--success', 'false']);
    });

    test('a successful boot signals success once', () => {
      sandbox = new Sandbox();
      const r = sandbox.run('trap on_exit EXIT\ncfn_signal true\nSIGNALLED=true', userDataValues(serverUserData(inputs())));
      expect(r.status).toBe(0);
      expect(sandbox.calls('cfn-signal').map((c) => c.argv[1])).toEqual(['true']);
    });

    test('installs an RPM from S3 only if its SHA-256 matches', () => {
      sandbox = new Sandbox();
      const values = userDataValues(serverUserData(inputs({ packageSource: S3_SOURCE })));
      // The stand-in aws copies nothing down: make the "download" produce known bytes instead.
      const rpm = 'not really an rpm';
      const sha = createHash('sha256').update(rpm).digest('hex');
      const download = `aws() { command aws "$@"; printf '%s' '${rpm}' >"$WORK/consul.rpm"; }`;
      const good = sandbox.run(`${download}\nWORK="$(mktemp -d)"\nPACKAGE_SHA256=${sha}\ninstall_consul`, values);
      expect(good.status).toBe(0);
      expect(sandbox.calls('dnf').map((c) => c.argv[2])).toEqual([expect.stringMatching(/consul\.rpm$/)]);
      expect(sandbox.calls('aws')[0].argv.slice(0, 2)).toEqual(['s3', 'cp']);
      expect(sandbox.calls('aws')[0].argv[2]).toBe(`s3://${S3_SOURCE.bucket}/${S3_SOURCE.key}`);
      const bad = sandbox.run(`${download}\nWORK="$(mktemp -d)"\ninstall_consul`, values);
      expect(bad.status).not.toBe(0);
      expect(sandbox.calls('dnf')).toHaveLength(1);
    });

    test('refuses a HashiCorp repository key that is not the pinned one', () => {
      sandbox = new Sandbox();
      const gnupg = join(sandbox.dir, 'keygen');
      spawnSync('mkdir', ['-m', '0700', gnupg]);
      const gen = spawnSync('gpg', ['--homedir', gnupg, '--batch', '--passphrase', '', '--quick-gen-key', 'Not HashiCorp <x@example.com>', 'ed25519', 'sign', 'never']);
      expect(gen.status).toBe(0);
      const key = spawnSync('gpg', ['--homedir', gnupg, '--armor', '--export'], { encoding: 'utf8' }).stdout;
      writeFileSync(join(sandbox.dir, 'impostor.asc'), key);
      // Serve the impostor key to the --output of curl.
      const curl = 'curl() { local out; while (($#)); do if [[ "$1" == --output ]]; then out="$2"; fi; shift; done; cp "$STUB_DIR/impostor.asc" "$out"; }';
      const r = sandbox.run(`${curl}\nWORK="$(mktemp -d)"\ninstall_consul`, userDataValues(serverUserData(inputs())));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`has fingerprint\\(s\\) \\[[0-9A-F]{40}\\], expected ${HASHICORP_PACKAGE_SIGNING_KEY_FINGERPRINT}`));
      expect(sandbox.calls('rpm')).toEqual([]);
      expect(sandbox.calls('dnf')).toEqual([]);
    });
  });
});

describe('snapshotScript with stand-in consul/aws CLIs', () => {
  const routes = (leader: string): Record<string, Route> => ({
    'GET /v1/agent/self': agentSelf,
    'GET /v1/operator/autopilot/state': { status: 200, body: autopilotState(leader, { [SELF]: { healthy: true, voter: true }, [OTHER]: { healthy: true, voter: true } }) },
  });
  const run = (leader: string): ReturnType<Sandbox['run']> => {
    sandbox = new Sandbox(routes(leader));
    writeFileSync(join(sandbox.dir, 'etc/secrets.json'), JSON.stringify({ encrypt: SECRETS.gossip, acl: { tokens: { initial_management: SECRETS.management.SecretID, agent: SECRETS.agent.SecretID } } }));
    return sandbox.run('snapshot_main', maintenanceValues(snapshotScript(inputs())));
  };

  test('a follower does nothing', () => {
    const r = run(OTHER);
    expect(r.status).toBe(0);
    expect(sandbox.calls('consul')).toEqual([]);
    expect(sandbox.calls('aws')).toEqual([]);
  });

  test('the leader saves, inspects and uploads under the dated key, then removes the file', () => {
    const r = run(SELF);
    expect(r.stderr).toMatch(/saved s3:\/\//);
    expect(r.status).toBe(0);
    const [save, inspect] = sandbox.calls('consul').map((c) => c.argv);
    expect(save.slice(0, 2)).toEqual(['snapshot', 'save']);
    expect(inspect).toEqual(['snapshot', 'inspect', save[2]]);
    const [upload] = sandbox.calls('aws').map((c) => c.argv);
    expect(upload.slice(0, 3)).toEqual(['s3', 'cp', save[2]]);
    expect(upload[3]).toMatch(/^s3:\/\/lambdameshconsulstack-prod-snapshotsbucket4f2a1b7c-1x2y3z4w5v6u\/consul\/snapshots\/consul-dc1-\d{8}T\d{6}Z\.snap$/);
    // No --sse: `aws:kms` without a key ID means the AWS managed key; the bucket's default (the cluster's key) applies.
    expect(upload.slice(4)).toEqual(['--region', 'eu-west-1', '--only-show-errors']);
    expect(sandbox.file('uploaded')).toBe('raft snapshot\n');
    expect(existsSync(save[2])).toBe(false);
    expect(sandbox.leftovers()).toEqual([]);
  });

  test('the token reaches the consul CLI as a file, never in argv or CONSUL_HTTP_TOKEN', () => {
    run(SELF);
    expect(JSON.stringify(sandbox.calls())).not.toContain(SECRETS.management.SecretID);
    for (const env of sandbox.consulEnv()) {
      expect(env).toMatchObject({ token: '', fileToken: SECRETS.management.SecretID, addr: 'https://127.0.0.1:8501' });
      expect(env.ca).toMatch(/\/etc\/tls\/ca\.pem$/);
    }
    expect(sandbox.requests().every((q) => q.headers === `X-Consul-Token: ${SECRETS.management.SecretID}`)).toBe(true);
  });

  test('fails, uploading nothing, when Consul has no leader', () => {
    sandbox = new Sandbox({ 'GET /v1/agent/self': agentSelf, 'GET /v1/operator/autopilot/state': { status: 500, body: 'No cluster leader' } });
    writeFileSync(join(sandbox.dir, 'etc/secrets.json'), JSON.stringify({ acl: { tokens: { initial_management: SECRETS.management.SecretID } } }));
    const r = sandbox.run('snapshot_main', maintenanceValues(snapshotScript(inputs())));
    expect(r.status).not.toBe(0);
    expect(sandbox.calls('aws')).toEqual([]);
  });
});

describe('healthMetricScript with stand-in consul/aws CLIs', () => {
  const servers = {
    [SELF]: { healthy: true, voter: true },
    [OTHER]: { healthy: false, voter: true },
    [THIRD]: { healthy: true, voter: true },
    [FOURTH]: { healthy: true, voter: false },
  };
  const run = (leader: string): ReturnType<Sandbox['run']> => {
    sandbox = new Sandbox({ 'GET /v1/agent/self': agentSelf, 'GET /v1/operator/autopilot/state': { status: 200, body: autopilotState(leader, servers) } });
    writeFileSync(join(sandbox.dir, 'etc/secrets.json'), JSON.stringify({ acl: { tokens: { initial_management: SECRETS.management.SecretID } } }));
    return sandbox.run('health_main', maintenanceValues(healthMetricScript(inputs())));
  };

  test('the leader publishes healthy voters and voters, by cluster name', () => {
    const r = run(SELF);
    expect(r.status).toBe(0);
    const [put] = sandbox.calls('aws').map((c) => c.argv);
    expect(put.slice(0, 6)).toEqual(['cloudwatch', 'put-metric-data', '--namespace', 'LambdaMesh/Consul', '--region', 'eu-west-1']);
    expect(JSON.parse(sandbox.file('metric-data.json'))).toEqual([
      { MetricName: 'HealthyServers', Value: 2, Unit: 'Count', Dimensions: [{ Name: 'ClusterName', Value: 'prod' }] },
      { MetricName: 'Voters', Value: 3, Unit: 'Count', Dimensions: [{ Name: 'ClusterName', Value: 'prod' }] },
    ]);
    expect(JSON.stringify(sandbox.calls())).not.toContain(SECRETS.management.SecretID);
    expect(sandbox.leftovers()).toEqual([]);
  });

  test('a follower publishes nothing', () => {
    const r = run(OTHER);
    expect(r.status).toBe(0);
    expect(sandbox.calls('aws')).toEqual([]);
  });
});

describe('systemdUnits', () => {
  test('a oneshot service and a timer for each script; the snapshot on its schedule, the metric every minute', () => {
    const units = systemdUnits(inputs());
    expect(Object.keys(units).sort()).toEqual(['consul-health-metric.service', 'consul-health-metric.timer', 'consul-snapshot.service', 'consul-snapshot.timer']);
    expect(units['consul-snapshot.timer']).toMatch(/^OnCalendar=\*-\*-\* 00\/6:00:00$/m);
    expect(units['consul-health-metric.timer']).toMatch(/^OnCalendar=\*-\*-\* \*:\*:00$/m);
    expect(units['consul-snapshot.service']).toMatch(new RegExp(`^ExecStart=${SERVER_FILES.snapshotScript}$`, 'm'));
    expect(units['consul-health-metric.service']).toMatch(new RegExp(`^ExecStart=${SERVER_FILES.healthScript}$`, 'm'));
    for (const unit of Object.values(units)) {
      expect(unit).toMatch(/^\[Unit\]\nDescription=.+\n/);
    }
  });

  test('the boot installs the scripts and exactly these units, and enables the timers', () => {
    sandbox = new Sandbox();
    const systemctl = 'systemctl() { printf "%s\\n" "$*" >>"$STUB_DIR/systemctl.log"; }';
    const r = sandbox.run(`${systemctl}\nSNAPSHOT_SCRIPT_PATH=$STUB_DIR/snapshot\nHEALTH_SCRIPT_PATH=$STUB_DIR/health\ninstall_maintenance`,
      userDataValues(serverUserData(inputs())));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(sandbox.file('snapshot')).toBe(snapshotScript(inputs()));
    expect(sandbox.file('health')).toBe(healthMetricScript(inputs()));
    expect(sandbox.mode('snapshot')).toBe('750');
    for (const [name, text] of Object.entries(systemdUnits(inputs()))) {
      expect(sandbox.file(`systemd/${name}`)).toBe(text);
      expect(sandbox.mode(`systemd/${name}`)).toBe('644');
    }
    expect(sandbox.file('systemctl.log')).toBe('daemon-reload\nenable --now consul-snapshot.timer consul-health-metric.timer\n');
  });
});

describe('cloudWatchAgentConfig', () => {
  test("ships Consul's logs and the boot log to the log group, one stream per instance", () => {
    expect(JSON.parse(cloudWatchAgentConfig(inputs()))).toEqual({
      agent: { run_as_user: 'root' },
      logs: {
        logs_collected: {
          files: {
            collect_list: [
              { file_path: '/var/log/consul/*.log', log_group_name: '/lambda-mesh/consul/LambdaMeshConsulStack-prod', log_stream_name: '{instance_id}', timezone: 'UTC' },
              { file_path: '/var/log/cloud-init-output.log', log_group_name: '/lambda-mesh/consul/LambdaMeshConsulStack-prod', log_stream_name: '{instance_id}/boot', timezone: 'UTC' },
            ],
          },
        },
      },
    });
  });
});

/** A maintenance script's values block, to run its entry point against the sandbox's library. */
function maintenanceValues(script: string): string {
  const m = /\n\{\n([\s\S]*?)\n\}\n/.exec(script);
  expect(m).not.toBeNull();
  return m![1];
}
