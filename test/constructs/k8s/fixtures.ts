import { Chart, Testing } from 'cdk8s';
import { expectValidManifests } from '../../harness/kubernetes';
import { meshError } from '../../util';

/** The namespace of the test charts. */
export const NAMESPACE = 'orders';

/**
 * A synthesized manifest: free-form JSON that tests navigate by path (`doc.spec.template.metadata`). Its shape is
 * checked by `expectValidManifests` against the official schemas, not by the type system.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Manifest = any;

/** A chart with a namespace (none when `null`), in a fresh test app. */
export function newChart(namespace: string | null = NAMESPACE): Chart {
  return new Chart(Testing.app(), 'Test', { namespace: namespace ?? undefined, disableResourceNameHashes: true });
}

/** The messages of every `node.addValidation` check in the chart (what `app.synth()` would report). */
export function validationErrors(chart: Chart): string[] {
  return chart.node.findAll().flatMap((c) => c.node.validate());
}

/**
 * Synthesizes a chart the way `app.synth()` does (validations first) and checks every manifest against the
 * official CRD schemas; returns the manifests.
 */
export function synthValid(chart: Chart): Manifest[] {
  const errors = validationErrors(chart);
  if (errors.length > 0) {
    throw new Error(`validation failed:\n${errors.join('\n')}`);
  }
  const docs = Testing.synth(chart);
  expectValidManifests(docs);
  return docs;
}

/** The manifest of `kind` named `name`. */
export function manifest(docs: readonly Manifest[], kind: string, name: string): Manifest {
  const found = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!found) {
    throw new Error(`no ${kind} ${name} among: ${docs.map((d) => `${String(d.kind)} ${String(d.metadata?.name)}`).join(', ')}`);
  }
  return found;
}

/** The warnings a construct carries (`Annotations.of(c).addWarningV2`). */
export function warningsOf(chart: Chart): string[] {
  return chart.node.findAll().flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:warning').map((m) => String(m.data)));
}

export { meshError };

/** Expects `fn` to throw a LambdaMeshError whose field matches `field`. */
export function expectInvalid(fn: () => unknown, field: RegExp): void {
  expect(meshError(fn).field).toMatch(field);
}
