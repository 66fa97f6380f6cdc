#!/usr/bin/env node
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { LambdaMeshError } from '../constructs/core';
import { resolveConfig } from '../lib/config';
import { MeshEnvironment } from '../lib/environment';
import { buildSummary, SUMMARY_FILE } from '../lib/summary';
import { addComplianceChecks } from '../lib/validation';

function main(): void {
  const app = new App();
  const { config, source } = resolveConfig(app.node.tryGetContext('config'));
  const environment = new MeshEnvironment(app, { config, configSource: source });
  // LAMBDA_MESH_GUARD_CACHE_DIR (optional): keep cfn-guard's findings per template there, so a synth checks only the
  // templates that changed (lib/validation.ts). The test suite shares its cache with this app through it.
  addComplianceChecks(app, { guardCacheDir: process.env.LAMBDA_MESH_GUARD_CACHE_DIR || undefined });

  // CloudFormation first: a validation finding stops here, before any Kubernetes file is written.
  const assembly = app.synth();
  const kubernetesFiles = environment.writeKubernetes();
  const summary = buildSummary(config.name, source, assembly, environment.mesh.graph(), kubernetesFiles);
  fs.writeFileSync(path.join(assembly.directory, SUMMARY_FILE), JSON.stringify(summary, undefined, 2));
}

try {
  main();
} catch (e) {
  // Bad input is the user's to fix: one line that says where, what was given and what was expected.
  // Anything else is a bug and keeps its stack trace.
  if (LambdaMeshError.isLambdaMeshError(e)) {
    console.error(`lambda-mesh: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
