import * as path from 'path';
import { type CloudAssembly } from 'aws-cdk-lib/cx-api';
import { describeHttpMatch } from '../constructs/mesh/private/http-match';
import { type MeshGraph } from '../constructs/mesh';

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
  };
  readonly kubernetesFiles: string[];
}

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
      rules: graph.rules.map((r) => `${r.source} -> ${r.destination}: ${r.action} ${describeHttpMatch(r.http)}`),
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
  for (const st of s.stacks) {
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
  lines.push('');
  lines.push(`Kubernetes: ${s.kubernetesFiles.length} file(s) in dist/${s.kubernetesFiles.length ? '' : ' (no charts yet)'}`);
  for (const f of s.kubernetesFiles) {
    lines.push(`  ${f}`);
  }
  return lines.join('\n');
}
