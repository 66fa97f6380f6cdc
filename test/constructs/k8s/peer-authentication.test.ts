import { MeshPeerAuthentication, type MtlsException, MtlsMode } from '../../../constructs/k8s/peer-authentication';
import { manifest, meshError, NAMESPACE, newChart, synthValid, warningsOf } from './fixtures';

const legacyScraper: MtlsException = {
  name: 'metrics-scraper',
  selector: { app: 'legacy-exporter' },
  ports: [{ port: 9100, mode: MtlsMode.PERMISSIVE }],
  reason: 'The node exporter is scraped by a Prometheus outside the mesh.',
};

describe('MeshPeerAuthentication', () => {
  test('defaults to one namespace-wide STRICT policy and no warning', () => {
    const chart = newChart();
    new MeshPeerAuthentication(chart, 'Mtls');
    const docs = synthValid(chart);
    expect(docs).toEqual([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default', namespace: NAMESPACE },
        spec: { mtls: { mode: 'STRICT' } },
      },
    ]);
    expect(warningsOf(chart)).toEqual([]);
  });

  test('an exception selects workloads, carries its reason, and raises a warning naming what is weaker', () => {
    const chart = newChart();
    const mtls = new MeshPeerAuthentication(chart, 'Mtls', { exceptions: [legacyScraper] });
    mtls.addException({ name: 'migration', selector: { app: 'orders-v0' }, mode: MtlsMode.PERMISSIVE, reason: 'Callers move into the mesh this sprint.' });
    const docs = synthValid(chart);
    expect(manifest(docs, 'PeerAuthentication', 'metrics-scraper')).toEqual({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'metrics-scraper', namespace: NAMESPACE, annotations: { 'lambda-mesh.io/mtls-exception-reason': legacyScraper.reason } },
      spec: { selector: { matchLabels: { app: 'legacy-exporter' } }, portLevelMtls: { 9100: { mode: 'PERMISSIVE' } } },
    });
    expect(manifest(docs, 'PeerAuthentication', 'migration').spec).toEqual({ selector: { matchLabels: { app: 'orders-v0' } }, mtls: { mode: 'PERMISSIVE' } });
    const warnings = warningsOf(chart);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/metrics-scraper weakens mTLS below STRICT for workloads app=legacy-exporter \(port 9100 PERMISSIVE\); reason: The node exporter/);
    expect(warnings[0]).toMatch(/\[ack: lambda-mesh:k8s-mtls-exception\]/);
    expect(warnings[1]).toMatch(/migration .*mode PERMISSIVE/);
  });

  test('fails when portLevelMtls has no selector (Istio CEL rule "portLevelMtls requires selector")', () => {
    const e = meshError(() => new MeshPeerAuthentication(newChart(), 'Mtls', { exceptions: [{ ...legacyScraper, selector: {} }] }));
    expect(e.field).toBe('exceptions[0].selector');
    expect(e.expected).toMatch(/portLevelMtls only with a workload selector/);
  });

  test('fails when an exception has no selector, which would replace the namespace-wide policy', () => {
    const e = meshError(() => new MeshPeerAuthentication(newChart(), 'Mtls').addException({ name: 'x', selector: {}, mode: MtlsMode.DISABLE, reason: 'r' }));
    expect(e.expected).toMatch(/replace the namespace-wide STRICT/);
  });

  test('fails when an exception has no reason', () => {
    const e = meshError(() => new MeshPeerAuthentication(newChart(), 'Mtls', { exceptions: [{ ...legacyScraper, reason: '  ' }] }));
    expect(e.field).toBe('exceptions[0].reason');
  });

  test('fails when an exception weakens nothing', () => {
    expect(meshError(() => new MeshPeerAuthentication(newChart(), 'Mtls', { exceptions: [{ name: 'x', selector: { app: 'a' }, reason: 'r' }] })).expected).toMatch(/changes nothing/);
    expect(meshError(() => new MeshPeerAuthentication(newChart(), 'Mtls', { exceptions: [{ name: 'x', selector: { app: 'a' }, mode: MtlsMode.STRICT, reason: 'r' }] })).expected).toMatch(/weakens something/);
  });

  test('fails when a port is out of range or repeated, or a name is taken', () => {
    expect(meshError(() => new MeshPeerAuthentication(newChart(), 'M', { exceptions: [{ ...legacyScraper, ports: [{ port: 0, mode: MtlsMode.DISABLE }] }] })).field).toBe('exceptions[0].ports[0].port');
    const twice = [{ port: 80, mode: MtlsMode.DISABLE }, { port: 80, mode: MtlsMode.PERMISSIVE }];
    expect(meshError(() => new MeshPeerAuthentication(newChart(), 'M', { exceptions: [{ ...legacyScraper, ports: twice }] })).expected).toBe('each port once');
    expect(meshError(() => new MeshPeerAuthentication(newChart(), 'M', { exceptions: [{ ...legacyScraper, name: 'default' }] })).field).toBe('exceptions[0].name');
  });

  test('fails when a second namespace-wide policy targets the same namespace (Istio would apply only the oldest)', () => {
    const chart = newChart();
    new MeshPeerAuthentication(chart, 'First');
    expect(meshError(() => new MeshPeerAuthentication(chart, 'Second', { name: 'second' })).expected).toMatch(/add exceptions to it instead/);
  });

  test('fails when a selector label is not a valid label', () => {
    expect(meshError(() => new MeshPeerAuthentication(newChart(), 'M', { exceptions: [{ ...legacyScraper, selector: { app: 'legacy*' } }] })).field).toBe('exceptions[0].selector.app');
  });
});
