import { checkIntentionsEntry, decideIntention, type IntentionsEntry, type IntentionSourceEntry, parseSpiffeServiceId } from './intentions-semantics';

// Doc quotes below are from the service intentions configuration entry reference
// (https://developer.hashicorp.com/consul/docs/reference/config-entry/service-intentions) unless they name another
// source; "rbac.go" is hashicorp/consul agent/xds/rbac.go, "Envoy HeaderUtility" is envoy source/common/http/header_utility.cc.

const entry = (sources: IntentionSourceEntry[], extra: Partial<IntentionsEntry> = {}): IntentionsEntry => ({ Kind: 'service-intentions', Name: 'api', ...extra, Sources: sources });
const web = { service: 'web' };
const get = (path: string, headers: Record<string, string | string[]> = {}): { method: string; path: string; headers: Record<string, string | string[]> } => ({ method: 'GET', path, headers });

describe('parseSpiffeServiceId', () => {
  test('reads the default-partition form Consul writes', () => {
    // Consul's SpiffeIDService.uriPath: /ns/<ns>/dc/<dc>/svc/<name>, with /ap/<ap> first only for a non-default partition.
    expect(parseSpiffeServiceId('spiffe://11111111-2222.consul/ns/default/dc/dc1/svc/web')).toEqual({
      trustDomain: '11111111-2222.consul',
      partition: 'default',
      namespace: 'default',
      datacenter: 'dc1',
      service: 'web',
    });
  });

  test('reads the partition form', () => {
    expect(parseSpiffeServiceId('spiffe://td.consul/ap/team-a/ns/ml/dc/dc2/svc/model-a-v1')).toEqual({
      trustDomain: 'td.consul',
      partition: 'team-a',
      namespace: 'ml',
      datacenter: 'dc2',
      service: 'model-a-v1',
    });
  });

  test('anything but a service identity is undefined', () => {
    for (const uri of [
      'spiffe://td.consul/agent/client/dc/dc1/id/abc', // an agent
      'spiffe://td.consul/gateway/mesh/dc/dc1', // a mesh gateway
      'spiffe://td.consul/ns/default/dc/dc1/svc/web/extra',
      'spiffe://td.consul/ns/default/dc/dc1/svc/web?x=1',
      'spiffe://td.consul/ns/default/svc/web',
      'https://td.consul/ns/default/dc/dc1/svc/web',
      '',
    ]) {
      expect(parseSpiffeServiceId(uri)).toBeUndefined();
    }
  });
});

describe('decideIntention: sources and precedence', () => {
  test('an exact source name beats the wildcard, whatever order the sources are listed in', () => {
    // "You can specify source configurations in any order, but Consul stores and evaluates them in order of reverse
    // precedence at runtime"; precedence: exact namespace + exact name (9) > exact namespace + * (8).
    for (const sources of [
      [{ Name: '*', Action: 'allow' }, { Name: 'web', Action: 'deny' }],
      [{ Name: 'web', Action: 'deny' }, { Name: '*', Action: 'allow' }],
    ]) {
      const e = entry(sources);
      expect(decideIntention(e, web)).toMatchObject({ allowed: false, sourceIndex: sources.findIndex((s) => s.Name === 'web') });
      expect(decideIntention(e, { service: 'billing' })).toMatchObject({ allowed: true, sourceIndex: sources.findIndex((s) => s.Name === '*') });
    }
  });

  test('only the most precise source applies: an exact L7 source that matches nothing does not fall through to *', () => {
    // v1.9 intentions docs: "between any pair of services only one intention controls authorization"; rbac.go gives
    // the wildcard's policy the principal `* AND NOT web`.
    const e = entry([
      { Name: '*', Action: 'allow' },
      { Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/public' } }] },
    ]);
    expect(decideIntention(e, web, get('/public/a'))).toMatchObject({ allowed: true, sourceIndex: 1, permissionIndex: 0 });
    const d = decideIntention(e, web, get('/private'));
    expect(d).toMatchObject({ allowed: false, sourceIndex: 1 });
    expect(d.permissionIndex).toBeUndefined();
    expect(d.reason).toBe('source "web" (Sources[1]): no permission matched GET /private: default deny');
    expect(decideIntention(e, { service: 'other' }, get('/private'))).toMatchObject({ allowed: true, sourceIndex: 0 });
  });

  test('a wildcard source matches every service of its namespace', () => {
    // "Sources[].Name ... You can also specify a wildcard character (*)"; precedence table row "exact ns, * name".
    const e = entry([{ Name: '*', Action: 'allow' }]);
    for (const service of ['web', 'model-a-v1', 'x']) {
      expect(decideIntention(e, { service })).toEqual({ allowed: true, action: 'allow', sourceIndex: 0, reason: 'source "*" (Sources[0]): L4 allow' });
    }
    expect(decideIntention(e, { service: 'web', namespace: 'ml' }).allowed).toBe(false);
  });

  test('a wildcard namespace (*/*) is the least precise source', () => {
    // Precedence: exact/exact 9 > exact/* 8 > */* 7 for an exact destination.
    const e = entry([
      { Name: '*', Namespace: '*', Action: 'allow' },
      { Name: '*', Namespace: 'ml', Action: 'deny' },
      { Name: 'trusted', Namespace: 'ml', Action: 'allow' },
    ]);
    expect(decideIntention(e, { service: 'trusted', namespace: 'ml' })).toMatchObject({ allowed: true, sourceIndex: 2 });
    expect(decideIntention(e, { service: 'web', namespace: 'ml' })).toMatchObject({ allowed: false, sourceIndex: 1 });
    expect(decideIntention(e, { service: 'web', namespace: 'other' })).toMatchObject({ allowed: true, sourceIndex: 0 });
  });

  test("a source's namespace and partition default to the entry's, and those to default", () => {
    // "Sources[].Namespace ... Default: If Peer is unspecified, defaults to the destination Namespace"; likewise Partition.
    const scoped = entry([{ Name: 'web', Action: 'allow' }], { Namespace: 'ml', Partition: 'team-a' });
    expect(decideIntention(scoped, { service: 'web', namespace: 'ml', partition: 'team-a' }).allowed).toBe(true);
    expect(decideIntention(scoped, { service: 'web' }).allowed).toBe(false);
    expect(decideIntention(scoped, { service: 'web', namespace: 'ml' }).allowed).toBe(false);
    const plain = entry([{ Name: 'web', Action: 'allow' }]);
    expect(decideIntention(plain, { service: 'web', namespace: 'default', partition: 'default' }).allowed).toBe(true);
    expect(decideIntention(plain, { service: 'web', namespace: 'ml' }).allowed).toBe(false);
    expect(decideIntention(plain, { service: 'web', partition: 'team-a' }).allowed).toBe(false);
  });

  test('the datacenter is not compared; the trust domain is, when the local one is given', () => {
    // rbac.go makeSpiffePattern: "Datacenter is not verified by RBAC, so we match on any value"; host = the local trust domain.
    const e = entry([{ Name: 'web', Action: 'allow' }]);
    const caller = parseSpiffeServiceId('spiffe://td.consul/ns/default/dc/dc9/svc/web')!;
    expect(decideIntention(e, caller, undefined, { trustDomain: 'td.consul' }).allowed).toBe(true);
    const foreign = parseSpiffeServiceId('spiffe://other.consul/ns/default/dc/dc1/svc/web')!;
    expect(decideIntention(e, foreign, undefined, { trustDomain: 'td.consul' })).toMatchObject({ allowed: false, reason: 'no matching source for default/default/web (other.consul): default deny' });
  });

  test('a peer source matches only callers from that peer, and local sources no peer caller', () => {
    // "Sources[].Peer: Specifies the name of a peered Consul cluster that the intention allows or denies traffic from."
    const e = entry([{ Name: 'web', Peer: 'east', Action: 'allow' }, { Name: '*', Action: 'allow' }]);
    expect(decideIntention(e, { service: 'web', peer: 'east' })).toMatchObject({ allowed: true, sourceIndex: 0 });
    expect(decideIntention(e, { service: 'web', peer: 'west' }).allowed).toBe(false);
    expect(decideIntention(e, { service: 'web' })).toMatchObject({ allowed: true, sourceIndex: 1 });
  });

  test('a caller no source matches is denied by default, or allowed under a default-allow ACL policy', () => {
    // Intentions docs: "If the policy is set to deny, then all connections or requests are denied and you must enable them explicitly."
    const e = entry([{ Name: 'web', Action: 'allow' }]);
    expect(decideIntention(e, { service: 'stranger' })).toEqual({ allowed: false, action: 'deny', reason: 'no matching source for default/default/stranger: default deny' });
    expect(decideIntention(e, { service: 'stranger' }, get('/'), { defaultAction: 'allow' }).allowed).toBe(true);
  });

  test('the wildcard destination applies only when no source of the exact destination matches', () => {
    // Precedence: every intention with the exact destination outranks every one with destination '*'.
    const wildcardDeny = entry([{ Name: '*', Action: 'deny' }], { Name: '*' });
    const wildcardAllow = entry([{ Name: '*', Action: 'allow' }], { Name: '*' });
    const e = entry([{ Name: 'web', Action: 'allow' }]);
    expect(decideIntention(e, web, undefined, { wildcardEntry: wildcardDeny }).allowed).toBe(true);
    expect(decideIntention(e, { service: 'stranger' }, undefined, { wildcardEntry: wildcardDeny })).toMatchObject({ allowed: false, reason: expect.stringContaining('destination "*"') as string });
    expect(decideIntention(e, { service: 'stranger' }, undefined, { wildcardEntry: wildcardAllow }).allowed).toBe(true);
    // An exact L7 source that matches no permission does not fall through to the wildcard destination.
    const l7 = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/a' } }] }]);
    expect(decideIntention(l7, web, get('/b'), { wildcardEntry: wildcardAllow }).allowed).toBe(false);
    expect(() => decideIntention(e, { service: 'stranger' }, undefined, { wildcardEntry: entry([]) })).toThrow(/wildcardEntry must be the entry of destination/);
  });
});

describe('decideIntention: L4', () => {
  test('Action allows or denies the whole connection, and every request on it', () => {
    // "Sources[].Action: Specifies the action to take when the source sends traffic to the destination service."
    const e = entry([{ Name: 'web', Action: 'allow' }, { Name: 'batch', Action: 'deny' }]);
    expect(decideIntention(e, web)).toEqual({ allowed: true, action: 'allow', sourceIndex: 0, reason: 'source "web" (Sources[0]): L4 allow' });
    expect(decideIntention(e, web, { method: 'DELETE', path: '/anything' }).allowed).toBe(true);
    expect(decideIntention(e, { service: 'batch' })).toEqual({ allowed: false, action: 'deny', sourceIndex: 1, reason: 'source "batch" (Sources[1]): L4 deny' });
    expect(decideIntention(e, { service: 'batch' }, get('/')).allowed).toBe(false);
  });

  test('an L7 source decides a connection without a request as deny', () => {
    // rbac.go: "In case L7 intentions slip through to here, treat them as deny intentions."
    const e = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }] }]);
    expect(decideIntention(e, web)).toMatchObject({ allowed: false, sourceIndex: 0 });
  });
});

describe('decideIntention: L7 permissions', () => {
  // lambda-mesh's seed scenario, as JSON: a deny before a broader allow.
  const featureStore = entry([
    {
      Name: 'model-a-v1',
      Permissions: [
        { Action: 'deny', HTTP: { PathPrefix: '/features/admin' } },
        { Action: 'allow', HTTP: { PathPrefix: '/features', Methods: ['GET'] } },
      ],
    },
  ], { Name: 'feature-store' });
  const modelA = { service: 'model-a-v1' };

  test('the first matching permission wins: a deny before a broader allow carves out of it', () => {
    // "Consul applies permissions in the order specified in the configuration. Beginning at the top of the list,
    // Consul applies the first matching request and stops evaluating against the remaining configurations."
    expect(decideIntention(featureStore, modelA, get('/features/admin/users'))).toEqual({
      allowed: false,
      action: 'deny',
      sourceIndex: 0,
      permissionIndex: 0,
      reason: 'source "model-a-v1" (Sources[0]): Permissions[0] matched: deny',
    });
    expect(decideIntention(featureStore, modelA, get('/features/42'))).toMatchObject({ allowed: true, permissionIndex: 1 });
  });

  test('an allow before a deny wins for what both match', () => {
    const e = entry([{ Name: 'web', Permissions: [
      { Action: 'allow', HTTP: { PathPrefix: '/v2' } },
      { Action: 'deny', HTTP: { PathPrefix: '/v2/admin' } },
    ] }]);
    expect(decideIntention(e, web, get('/v2/admin'))).toMatchObject({ allowed: true, permissionIndex: 0 });
  });

  test('a request no permission matches gets the default: deny', () => {
    // "For requests that do not match any of the defined permissions, Consul applies the intention behavior defined in
    // the acl_default_policy configuration."
    const d = decideIntention(featureStore, modelA, { method: 'POST', path: '/features/42' });
    expect(d).toEqual({ allowed: false, action: 'deny', sourceIndex: 0, reason: 'source "model-a-v1" (Sources[0]): no permission matched POST /features/42: default deny' });
    expect(decideIntention(featureStore, modelA, get('/other')).allowed).toBe(false);
    expect(decideIntention(featureStore, modelA, get('/other'), { defaultAction: 'allow' }).allowed).toBe(true);
  });

  test('PathExact matches the whole path, without the query string', () => {
    // HTTP table: "PathExact: Specifies an exact path to match on the HTTP request path"; Envoy's url_path PathMatcher
    // matches the path without the query string.
    const e = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathExact: '/features/b' } }] }]);
    expect(decideIntention(e, web, get('/features/b')).allowed).toBe(true);
    expect(decideIntention(e, web, get('/features/b?tenant=b#top')).allowed).toBe(true);
    for (const path of ['/features/b/', '/features/bb', '/Features/b', '/features']) {
      expect(decideIntention(e, web, get(path)).allowed).toBe(false);
    }
  });

  test('PathPrefix is a string prefix, not a path segment prefix', () => {
    // "PathPrefix: Specifies a path prefix to match on the HTTP request path" (Envoy StringMatcher prefix).
    const e = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/v2' } }] }]);
    for (const path of ['/v2', '/v2/', '/v2/widgets', '/v2beta', '/v2?x']) {
      expect(decideIntention(e, web, get(path)).allowed).toBe(true);
    }
    for (const path of ['/v1', '/V2', '/api/v2']) {
      expect(decideIntention(e, web, get(path)).allowed).toBe(false);
    }
  });

  test('PathRegex must match the whole path', () => {
    // "PathRegex ... If using Envoy, refer to the re2 documentation"; Envoy's safe_regex is an RE2 full match.
    const e = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathRegex: '/results\\.Writer/[A-Za-z]+' } }] }]);
    expect(decideIntention(e, web, get('/results.Writer/Write')).allowed).toBe(true);
    expect(decideIntention(e, web, get('/results.Writer/Write?x=1')).allowed).toBe(true);
    for (const path of ['/results.Writer/Write/more', '/x/results.Writer/Write', '/resultsXWriter/Write', '/results.Writer/']) {
      expect(decideIntention(e, web, get(path)).allowed).toBe(false);
    }
    // Already-anchored patterns (as lambda-mesh renders gRPC rules) mean the same.
    const anchored = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathRegex: '^/results\\.Writer/.*$' } }] }]);
    expect(decideIntention(anchored, web, get('/results.Writer/Write')).allowed).toBe(true);
    expect(decideIntention(anchored, web, get('/other.Service/Call')).allowed).toBe(false);
  });

  test('Methods: any of the listed ones; none listed is any method', () => {
    // "Methods: Specifies a list of HTTP methods ... Default: All request methods"; Consul upper-cases them on write.
    const e = entry([{ Name: 'web', Permissions: [
      { Action: 'allow', HTTP: { PathPrefix: '/a', Methods: ['get', 'HEAD'] } },
      { Action: 'allow', HTTP: { PathPrefix: '/b' } },
    ] }]);
    expect(decideIntention(e, web, { method: 'GET', path: '/a' }).allowed).toBe(true);
    expect(decideIntention(e, web, { method: 'HEAD', path: '/a' }).allowed).toBe(true);
    expect(decideIntention(e, web, { method: 'POST', path: '/a' }).allowed).toBe(false);
    for (const method of ['GET', 'POST', 'DELETE', 'PATCH']) {
      expect(decideIntention(e, web, { method, path: '/b' }).allowed).toBe(true);
    }
    // Methods alone (no path) is a valid permission: every path.
    const methodsOnly = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Methods: ['GET'] } }] }]);
    expect(decideIntention(methodsOnly, web, get('/anything/at/all')).allowed).toBe(true);
    expect(decideIntention(methodsOnly, web, { method: 'PUT', path: '/' }).allowed).toBe(false);
  });

  describe('Header', () => {
    const withHeader = (header: Record<string, unknown>): IntentionsEntry =>
      entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Header: [{ Name: 'X-Tenant', ...header }] } }] }]);
    const allowed = (e: IntentionsEntry, headers: Record<string, string | string[]>): boolean => decideIntention(e, web, get('/', headers)).allowed;

    test('Present: the header is there, with any value; header names are case-insensitive', () => {
      // "Present: Enables a match if the header configured in the Name field appears in the request."
      const e = withHeader({ Present: true });
      expect(allowed(e, { 'x-tenant': '' })).toBe(true);
      expect(allowed(e, { 'X-TENANT': 'b' })).toBe(true);
      expect(allowed(e, {})).toBe(false);
    });

    test('Exact, and IgnoreCase', () => {
      // "Exact: ... If the request header value matches the Exact value"; "IgnoreCase: Ignores the case ... with Exact, Prefix, Suffix, or Contains".
      expect(allowed(withHeader({ Exact: 'b' }), { 'x-tenant': 'b' })).toBe(true);
      expect(allowed(withHeader({ Exact: 'b' }), { 'x-tenant': 'B' })).toBe(false);
      expect(allowed(withHeader({ Exact: 'b' }), { 'x-tenant': 'bb' })).toBe(false);
      expect(allowed(withHeader({ Exact: 'b', IgnoreCase: true }), { 'x-tenant': 'B' })).toBe(true);
    });

    test('Prefix, Suffix, Contains', () => {
      // "Prefix: ... starts with"; "Suffix: ... ends with"; "Contains: ... includes the Contains value".
      expect(allowed(withHeader({ Prefix: 'team-' }), { 'x-tenant': 'team-a' })).toBe(true);
      expect(allowed(withHeader({ Prefix: 'team-' }), { 'x-tenant': 'a-team-' })).toBe(false);
      expect(allowed(withHeader({ Suffix: '-prod' }), { 'x-tenant': 'a-prod' })).toBe(true);
      expect(allowed(withHeader({ Suffix: '-prod' }), { 'x-tenant': 'a-prod-2' })).toBe(false);
      expect(allowed(withHeader({ Contains: 'ml' }), { 'x-tenant': 'a-ml-b' })).toBe(true);
      expect(allowed(withHeader({ Contains: 'ml' }), { 'x-tenant': 'a-ML-b' })).toBe(false);
      expect(allowed(withHeader({ Contains: 'ml', IgnoreCase: true }), { 'x-tenant': 'a-ML-b' })).toBe(true);
    });

    test('Regex must match the whole value', () => {
      // "Regex: ... If the request header value matches the regex" (Envoy safe_regex: RE2 full match).
      const e = withHeader({ Regex: '[a-z]+-[0-9]+' });
      expect(allowed(e, { 'x-tenant': 'team-42' })).toBe(true);
      expect(allowed(e, { 'x-tenant': 'team-42x' })).toBe(false);
      expect(allowed(e, { 'x-tenant': 'my team-42' })).toBe(false);
    });

    test('Invert negates a match, but a missing header matches only an inverted Present', () => {
      // "Invert: Inverts the matching logic configured in the Header"; Envoy HeaderUtility::matchHeaders: a missing
      // header returns `invert_match && Present`, before any inversion of the other matchers.
      const notPresent = withHeader({ Present: true, Invert: true });
      expect(allowed(notPresent, {})).toBe(true);
      expect(allowed(notPresent, { 'x-tenant': 'b' })).toBe(false);
      const notB = withHeader({ Exact: 'b', Invert: true });
      expect(allowed(notB, { 'x-tenant': 'a' })).toBe(true);
      expect(allowed(notB, { 'x-tenant': 'b' })).toBe(false);
      expect(allowed(notB, {})).toBe(false);
      expect(allowed(withHeader({ Prefix: 'team-', Invert: true }), { 'x-tenant': 'other' })).toBe(true);
      expect(allowed(withHeader({ Suffix: '-prod', Invert: true }), { 'x-tenant': 'a-prod' })).toBe(false);
      expect(allowed(withHeader({ Regex: '[0-9]+', Invert: true }), { 'x-tenant': '12a' })).toBe(true);
    });

    test('a header sent more than once is matched as its values joined with a comma', () => {
      // "Envoy internally concatenates multiple header values into a single CSV value prior to applying match rules".
      expect(allowed(withHeader({ Exact: 'a,b' }), { 'x-tenant': ['a', 'b'] })).toBe(true);
      expect(allowed(withHeader({ Exact: 'a' }), { 'x-tenant': ['a', 'b'] })).toBe(false);
      expect(allowed(withHeader({ Contains: 'b' }), { 'x-tenant': ['a', 'b'] })).toBe(true);
    });

    test('every header matcher must hold, and the path and methods too', () => {
      // Header: "The request header must match all specified criteria for the permission to apply."
      const e = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: {
        PathExact: '/features/b',
        Methods: ['GET'],
        Header: [{ Name: 'x-tenant', Exact: 'b' }, { Name: 'x-debug', Present: true, Invert: true }],
      } }] }]);
      expect(decideIntention(e, web, get('/features/b', { 'x-tenant': 'b' })).allowed).toBe(true);
      expect(decideIntention(e, web, get('/features/b', { 'x-tenant': 'b', 'x-debug': '1' })).allowed).toBe(false);
      expect(decideIntention(e, web, get('/features/b', { 'x-tenant': 'a' })).allowed).toBe(false);
      expect(decideIntention(e, web, get('/features/a', { 'x-tenant': 'b' })).allowed).toBe(false);
      expect(decideIntention(e, web, { method: 'POST', path: '/features/b', headers: { 'x-tenant': 'b' } }).allowed).toBe(false);
    });

    test('pseudo-headers :method, :path (with the query) and :authority (the Host header)', () => {
      const e = entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Header: [
        { Name: ':path', Suffix: '?debug=1', Invert: true },
        { Name: ':authority', Prefix: 'api.' },
      ] } }] }]);
      expect(decideIntention(e, web, get('/x', { host: 'api.local' })).allowed).toBe(true);
      expect(decideIntention(e, web, get('/x?debug=1', { host: 'api.local' })).allowed).toBe(false);
      expect(decideIntention(e, web, get('/x', { host: 'web.local' })).allowed).toBe(false);
    });
  });
});

describe('checkIntentionsEntry', () => {
  test('accepts an entry as lambda-mesh renders it', () => {
    expect(() => checkIntentionsEntry({
      Kind: 'service-intentions',
      Name: 'feature-store',
      Sources: [
        { Name: 'model-b-v1', Permissions: [{ Action: 'allow', HTTP: { PathExact: '/features/b', Header: [{ Name: 'x-tenant', Exact: 'b' }, { Name: 'x-debug', Present: true, Invert: true }] } }] },
        { Name: 'model-a-v1', Action: 'allow', Description: 'ship logs' },
      ],
      Meta: { 'lambda-mesh-owner-0123456789ab': 'owner' },
    })).not.toThrow();
  });

  test.each<[string, IntentionsEntry, string]>([
    ['another kind', { Kind: 'service-defaults', Name: 'api', Sources: [] }, 'Kind must be "service-intentions"'],
    ['no sources', entry([]), 'At least one source is required'],
    ['a source without Action or Permissions', entry([{ Name: 'web' }]), "Sources[0].Action must be set to 'allow' or 'deny'"],
    ['both Action and Permissions', entry([{ Name: 'web', Action: 'allow', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }] }]), 'Sources[0].Action must be omitted if Permissions are specified'],
    ['Permissions on a wildcard destination', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }] }], { Name: '*' }), 'Sources[0].Permissions cannot be specified on intentions with wildcarded destinations'],
    ['a partial wildcard', entry([{ Name: 'web-*', Action: 'allow' }]), "Sources[0].Name: wildcard character '*' cannot be used with partial values"],
    ['an exact name in a wildcard namespace', entry([{ Name: 'web', Namespace: '*', Action: 'allow' }]), 'Sources[0].Name: exact value cannot follow wildcard namespace'],
    ['a source twice', entry([{ Name: 'web', Action: 'allow' }, { Name: 'web', Action: 'deny' }]), 'Sources[1] defines "default/web" more than once'],
    ['a permission without HTTP', entry([{ Name: 'web', Permissions: [{ Action: 'allow' }] }]), 'Sources[0].Permissions[0].HTTP is required'],
    ['an empty HTTP', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: {} }] }]), 'Sources[0].Permissions[0].HTTP should not be empty'],
    ['two path matchers', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathExact: '/a', PathPrefix: '/a' } }] }]), 'should only contain at most one of PathExact, PathPrefix, or PathRegex'],
    ['a path without a leading slash', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: 'v2' } }] }]), `PathPrefix doesn't start with '/': "v2"`],
    ['a header with two matchers', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Header: [{ Name: 'x', Exact: 'a', Prefix: 'a' }] } }] }]), 'Header[0] should only contain one of'],
    ['a header with no matcher', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Header: [{ Name: 'x', Invert: true }] } }] }]), 'Header[0] should only contain one of'],
    ['an unknown method', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Methods: ['FETCH'] } }] }]), 'Methods contains an invalid method "FETCH"'],
    ['a method twice', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { Methods: ['GET', 'get'] } }] }]), 'Methods contains "GET" more than once'],
    ['a permission action other than allow/deny', entry([{ Name: 'web', Permissions: [{ Action: 'permit', HTTP: { PathPrefix: '/' } }] }]), "Permissions[0].Action must be set to 'allow' or 'deny'"],
    ['a regex JavaScript cannot run', entry([{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathRegex: '(' } }] }]), 'is not a regular expression this evaluator can run'],
    ['a JWT requirement (not modelled)', entry([{ Name: 'web', Action: 'allow' }], { JWT: { Providers: [{ Name: 'okta' }] } }), 'JWT requirements are not modelled'],
  ])('fails for %s', (_, e, message) => {
    expect(() => checkIntentionsEntry(e)).toThrow(message);
    expect(() => decideIntention(e, web, get('/'))).toThrow(message);
  });
});
