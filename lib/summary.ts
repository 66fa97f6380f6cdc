import * as path from 'path';
import { type CloudAssembly } from 'aws-cdk-lib/cx-api';
import { IdentityKind, Mesh, type MeshGraph, RuleAction } from '../constructs/mesh';

/** The name of the summary file the app writes into the cloud assembly directory. */
export const SUMMARY_FILE = 'lambda-mesh-summary.json';

/**
 * What one synth produced, for people: written by the app, printed by `npm run synth`.
 */
export interface SynthSummary {
  readonly environment: string;
  readonly configSource: string;
  readonly stacks: Array<{ readonly stackName: string; readonly templateFile: string; readonly resources: number; readonly byType: Record<string, number> }>;
  readonly mesh: {
    readonly datacenter: string;
    readonly services: string[];
    readonly identities: string[];
    readonly rules: string[];
    /** Each function version's upstreams as its mesh extension serves them: `model-a-v1: feature-store at 127.0.0.1:8080, ...`. */
    readonly functionUpstreams: string[];
  };
  readonly kubernetesFiles: string[];
}

/** The most model function stacks ({@link formatSummary}) lists one by one; past it, the rest is one line. */
export const MAX_LISTED_FUNCTION_STACKS = 10;

/** Summarises a synthesized assembly, the mesh graph and the Kubernetes files written. */
export function buildSummary(environment: string, configSource: string, assembly: CloudAssembly, graph: MeshGraph, kubernetesFiles: string[]): SynthSummary {
  return {
    environment,
    configSource,
    stacks: assembly.stacks.map((s) => {
      const resources = Object.values((s.template as { Resources?: Record<string, { Type: string }> }).Resources ?? {});
      const byType: Record<string, number> = {};
      for (const r of resources) {
        byType[r.Type] = (byType[r.Type] ?? 0) + 1;
      }
      return { stackName: s.stackName, templateFile: path.join(path.basename(assembly.directory), s.templateFile), resources: resources.length, byType };
    }),
    mesh: {
      datacenter: graph.datacenter,
      services: graph.services.map((s) => `${s.name} (${s.protocol}:${s.port}, local ${s.localPort})`),
      identities: graph.identities.map((i) => i.name),
      rules: graph.rules.map((r) => `${r.source} -> ${r.destination}: ${r.action} ${Mesh.describeHttpMatch(r.http)}`),
      functionUpstreams: graph.identities.filter((i) => i.kind === IdentityKind.FUNCTION_VERSION).map((i) => {
        const upstreams = [...new Set(graph.rules.filter((r) => r.source === i.name && r.action === RuleAction.ALLOW).map((r) => r.destination))]
          .map((name) => graph.services.find((svc) => svc.name === name)!)
          .map((svc) => `${svc.name} at 127.0.0.1:${svc.localPort}`);
        return `${i.name}: ${upstreams.join(', ') || '(none)'}`;
      }),
    },
    kubernetesFiles: kubernetesFiles.map((f) => path.relative(process.cwd(), f)),
  };
}

/** Renders a summary as a short plain-text report. */
export function formatSummary(s: SynthSummary): string {
  const lines: string[] = [];
  lines.push(`lambda-mesh environment '${s.environment}' (config: ${s.configSource})`);
  lines.push('');
  lines.push(`CloudFormation: ${s.stacks.length} stack(s)`);
  // One stack per model function: with many models, list a few and sum up the rest rather than print hundreds.
  const functionStackPrefix = `${s.environment}-function-`;
  const functionStacks = s.stacks.filter((st) => st.stackName.startsWith(functionStackPrefix));
  const unlisted = functionStacks.length > MAX_LISTED_FUNCTION_STACKS ? functionStacks.slice(MAX_LISTED_FUNCTION_STACKS - 1) : [];
  const skipped = new Set(unlisted);
  for (const st of s.stacks) {
    if (st === unlisted[0]) {
      const sizes = unlisted.map((u) => u.resources);
      lines.push(`  ... and ${unlisted.length} more ${functionStackPrefix}<function> stacks: ${Math.min(...sizes)} to ${Math.max(...sizes)} resources each`);
    }
    if (skipped.has(st)) {
      continue;
    }
    const top = Object.entries(st.byType).sort(([, a], [, b]) => b - a).slice(0, 4).map(([t, n]) => `${n} ${t.replace(/^AWS::/, '')}`).join(', ');
    lines.push(`  ${st.stackName}: ${st.resources} resources -> ${st.templateFile}${top ? `  (${top}, ...)` : ''}`);
  }
  lines.push('');
  lines.push(`Mesh (datacenter ${s.mesh.datacenter}): ${s.mesh.services.length} services, ${s.mesh.identities.length} identities, ${s.mesh.rules.length} rules (default deny)`);
  for (const svc of s.mesh.services) {
    lines.push(`  service  ${svc}`);
  }
  lines.push(`  identities: ${s.mesh.identities.join(', ')}`);
  for (const r of s.mesh.rules) {
    lines.push(`  rule     ${r}`);
  }
  for (const f of s.mesh.functionUpstreams) {
    lines.push(`  function ${f}`);
  }
  lines.push('');
  lines.push(`Kubernetes: ${s.kubernetesFiles.length} file(s) in dist/${s.kubernetesFiles.length ? '' : ' (no charts yet)'}`);
  for (const f of s.kubernetesFiles) {
    lines.push(`  ${f}`);
  }
  return lines.join('\n');
}
