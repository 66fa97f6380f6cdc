#!/usr/bin/env node
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { resolveConfig } from '../lib/config';
import { MeshEnvironment } from '../lib/environment';
import { buildSummary, SUMMARY_FILE } from '../lib/summary';
import { addComplianceChecks } from '../lib/validation';

const app = new App();
const { config, source } = resolveConfig(app.node.tryGetContext('config'));
const environment = new MeshEnvironment(app, { config, configSource: source });
addComplianceChecks(app);

// CloudFormation first: a validation finding stops here, before any Kubernetes file is written.
const assembly = app.synth();
const kubernetesFiles = environment.writeKubernetes();
const summary = buildSummary(config.name, source, assembly, environment.mesh.graph(), kubernetesFiles);
fs.writeFileSync(path.join(assembly.directory, SUMMARY_FILE), JSON.stringify(summary, undefined, 2));
