import { AGENT_POLICY, SCOPED_TOKEN_POLICIES, WORKLOAD_NODE_PREFIX } from '../../../constructs/consul/private/acl-policies';
import { ConsulTokenRole } from '../../../constructs/consul/types';

/**
 * The ACL rule resources Consul CE documents, and the dispositions.
 * @see https://developer.hashicorp.com/consul/docs/reference/acl/rule
 */
const UNLABELLED = ['acl', 'keyring', 'mesh', 'operator', 'peering'];
const LABELLED = ['agent', 'event', 'identity', 'key', 'node', 'query', 'service', 'session'].flatMap((r) => [r, `${r}_prefix`]);
const DISPOSITIONS = ['read', 'write', 'deny', 'list'];

/** One rule: `resource = "disposition"`, or `resource "label" { policy = ..., intentions = ... }`. */
interface Rule {
  readonly resource: string;
  readonly label?: string;
  readonly policy: string;
  readonly intentions?: string;
}

/** Parses the subset of HCL that policy rules use; throws on anything else. */
function parseRules(hcl: string): Rule[] {
  const rules: Rule[] = [];
  const lines = hcl.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m = /^(\w+) = "(\w+)"$/.exec(line);
    if (m) {
      rules.push({ resource: m[1], policy: m[2] });
      continue;
    }
    m = /^(\w+) "([^"]*)" \{$/.exec(line);
    if (!m) {
      throw new Error(`line ${i + 1}: ${JSON.stringify(line)}`);
    }
    const block: Record<string, string> = {};
    for (i++; lines[i] !== '}'; i++) {
      const attr = /^ {2}(policy|intentions) += "(\w+)"$/.exec(lines[i] ?? '');
      if (!attr) {
        throw new Error(`line ${i + 1}: ${JSON.stringify(lines[i])}`);
      }
      block[attr[1]] = attr[2];
    }
    rules.push({ resource: m[1], label: m[2], policy: block.policy, ...(block.intentions ? { intentions: block.intentions } : {}) });
  }
  return rules;
}

describe('ACL policies', () => {
  const all = { agent: AGENT_POLICY, ...SCOPED_TOKEN_POLICIES };

  test.each(Object.entries(all))('%s: documented resources and dispositions only', (_name, policy) => {
    for (const rule of parseRules(policy.rules)) {
      expect(rule.label === undefined ? UNLABELLED : LABELLED).toContain(rule.resource);
      expect(DISPOSITIONS).toContain(rule.policy);
      if (rule.intentions !== undefined) {
        expect(['service', 'service_prefix']).toContain(rule.resource);
        expect(DISPOSITIONS).toContain(rule.intentions);
      }
    }
    expect(policy.description).toMatch(/^lambda-mesh: /);
  });

  test('the parser rejects what it does not understand', () => {
    expect(() => parseRules('service "x" {\n  policy = write\n}')).toThrow(/line 2/);
    expect(() => parseRules('service x {')).toThrow(/line 1/);
  });

  test('every token role has a policy', () => {
    expect(Object.keys(SCOPED_TOKEN_POLICIES).sort()).toEqual(Object.values(ConsulTokenRole).sort());
  });

  test('no scoped policy can manage the cluster, the keyring or KV; only the two auth-method roles can manage ACLs', () => {
    // Auth methods and binding rules need `acl = "write"`: Consul has no finer grant for them.
    const aclManagers = [ConsulTokenRole.WORKLOAD_IDENTITY, ConsulTokenRole.KUBERNETES_ACL_INIT];
    for (const [role, policy] of Object.entries(SCOPED_TOKEN_POLICIES)) {
      const resources = parseRules(policy.rules).map((r) => r.resource);
      for (const forbidden of ['operator', 'keyring', 'key', 'key_prefix', 'query', 'query_prefix', 'session', 'session_prefix']) {
        expect(resources).not.toContain(forbidden);
      }
      if (!aclManagers.includes(role as ConsulTokenRole)) {
        expect(resources).not.toContain('acl');
      }
    }
    expect(parseRules(SCOPED_TOKEN_POLICIES[ConsulTokenRole.WORKLOAD_IDENTITY].rules)).toEqual([
      { resource: 'acl', policy: 'write' },
      { resource: 'node_prefix', label: 'arn:', policy: 'write' },
      { resource: 'node_prefix', label: 'lambda-mesh-', policy: 'write' },
    ]);
    expect(parseRules(SCOPED_TOKEN_POLICIES[ConsulTokenRole.KUBERNETES_ACL_INIT].rules).map((r) => r.resource)).toEqual(['acl', 'agent_prefix']);
  });

  test('agent: the documented agent token policy (node write, service read)', () => {
    // https://developer.hashicorp.com/consul/docs/secure/acl/token/agent
    expect(parseRules(AGENT_POLICY.rules)).toEqual([
      { resource: 'node_prefix', label: '', policy: 'write' },
      { resource: 'service_prefix', label: '', policy: 'read' },
    ]);
    expect(AGENT_POLICY.name).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test('intentions-writer: intentions:write (service-intentions) and service:write (service-defaults), nothing else', () => {
    // https://developer.hashicorp.com/consul/commands/config/write: the ACL each config entry kind needs.
    expect(parseRules(SCOPED_TOKEN_POLICIES[ConsulTokenRole.INTENTIONS_WRITER].rules)).toEqual([
      { resource: 'service_prefix', label: '', policy: 'write', intentions: 'write' },
    ]);
  });

  test('identity-registrar: register external nodes and services, fetch their leaf certificates', () => {
    expect(parseRules(SCOPED_TOKEN_POLICIES[ConsulTokenRole.IDENTITY_REGISTRAR].rules)).toEqual([
      { resource: 'node_prefix', label: '', policy: 'write' },
      { resource: 'service_prefix', label: '', policy: 'write' },
    ]);
  });

  test('workload-identity: ACL objects (auth method, binding rules, the gateway role) and the synthetic nodes only', () => {
    // https://developer.hashicorp.com/consul/api-docs/acl/auth-methods: acl:write; catalog register: node:write.
    expect(parseRules(SCOPED_TOKEN_POLICIES[ConsulTokenRole.WORKLOAD_IDENTITY].rules)).toEqual([
      { resource: 'acl', policy: 'write' },
      { resource: 'node_prefix', label: 'arn:', policy: 'write' },
      { resource: 'node_prefix', label: WORKLOAD_NODE_PREFIX, policy: 'write' },
    ]);
  });

  test('kubernetes-acl-init: what consul-k8s server-acl-init needs with external servers (acl:write, agent:read)', () => {
    // https://developer.hashicorp.com/consul/docs/k8s/deployment-configurations/servers-outside-kubernetes
    expect(parseRules(SCOPED_TOKEN_POLICIES[ConsulTokenRole.KUBERNETES_ACL_INIT].rules)).toEqual([
      { resource: 'acl', policy: 'write' },
      { resource: 'agent_prefix', label: '', policy: 'read' },
    ]);
  });

  test('no role has a static gateway token any more: gateways log in with their IAM role', () => {
    expect(Object.keys(SCOPED_TOKEN_POLICIES).sort()).toEqual(['identity-registrar', 'intentions-writer', 'kubernetes-acl-init', 'workload-identity']);
  });

});
