/**
 * How the mesh model scales with the number of models (N, each with 2 versions) and services (M), every
 * version allowed to every service with an L7 rule: the shape of a large ML platform.
 *
 * For each size it prints the time to declare the model, to resolve it once, and to look up the upstreams of
 * every identity (what each mesh function does at synth). The baseline, in the same run, is the same lookups
 * without the resolved-graph cache (resolving the model per lookup, as the first version did), timed on a
 * sample of lookups and scaled to all of them.
 *
 * Run: npx tsx bench/mesh-model.ts
 */
import { App } from 'aws-cdk-lib';
import { Mesh, ServiceProtocol } from '../constructs/mesh';

const SIZES: Array<[number, number]> = [[10, 3], [100, 10], [500, 30]];
const BASELINE_SAMPLE = 10;

function ms(t: number): string {
  return t < 10 ? t.toFixed(2) : t.toFixed(0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

console.log('N models x M services | rules  | declare ms | resolve ms | upstreams of all (cached) ms | baseline: uncached ms (est.) | speed-up');
for (const [n, m] of SIZES) {
  const t0 = performance.now();
  const mesh = new Mesh(new App(), 'Mesh');
  const services = Array.from({ length: m }, (_, i) => mesh.addService(`svc-${i}`, { port: 10000 + i, protocol: ServiceProtocol.HTTP }));
  const functions = Array.from({ length: n }, (_, i) => mesh.addFunction(`model-${i}`, { versions: ['v1', 'v2'] }));
  for (const fn of functions) {
    for (const svc of services) {
      svc.allowFrom(fn, { http: { pathPrefix: '/v1', methods: ['GET', 'POST'] } });
    }
  }
  const t1 = performance.now();
  const graph = mesh.graph();
  const t2 = performance.now();
  const identities = graph.identities.map((i) => i.name);
  for (const id of identities) {
    mesh.upstreamsOf(id);
  }
  const t3 = performance.now();

  const perLookup: number[] = [];
  for (const id of identities.slice(0, BASELINE_SAMPLE)) {
    const s = performance.now();
    mesh._invalidate();
    mesh.upstreamsOf(id);
    perLookup.push(performance.now() - s);
  }
  const baseline = median(perLookup) * identities.length;
  const cached = t3 - t2;
  console.log(
    `${`${n} x ${m}`.padEnd(21)} | ${String(graph.rules.length).padEnd(6)} | ${ms(t1 - t0).padStart(10)} | ${ms(t2 - t1).padStart(10)} | ${ms(cached).padStart(28)} | ${ms(baseline).padStart(28)} | ${(baseline / Math.max(cached, 0.01)).toFixed(0)}x`,
  );
}
