/**
 * eslint.config.mjs's module boundaries (lambda-mesh/module-boundaries): ESLint's Node API lints in-memory samples
 * with the rule's own config objects, in a child Node process (the config is an ES module, which Jest's CommonJS
 * runtime cannot import). The type-checked rules are left out of the samples' config: they need the files on disk.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

interface Sample {
  /** Where the sample claims to be, relative to the repository. */
  readonly file: string;
  readonly code: string;
}

/** Lints every sample with the boundary configs (or reads the repository's config) and prints JSON. */
const LINT = `
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const root = process.cwd();
const { moduleBoundaryConfigs } = await import(pathToFileURL(path.join(root, 'eslint.config.mjs')).href);
const request = JSON.parse(process.argv[1]);
if (request.configFor) {
  const eslint = new ESLint({ cwd: root });
  const out = {};
  for (const file of request.configFor) {
    const config = await eslint.calculateConfigForFile(path.join(root, file));
    out[file] = config.rules?.['lambda-mesh/module-boundaries'] ?? null;
  }
  console.log(JSON.stringify(out));
} else {
  const eslint = new ESLint({
    cwd: root,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...moduleBoundaryConfigs],
  });
  const out = [];
  for (const s of request.samples) {
    const [result] = await eslint.lintText(s.code, { filePath: path.join(root, s.file) });
    out.push(result.messages.map((m) => ({ rule: m.ruleId, id: m.messageId, line: m.line, message: m.message })));
  }
  console.log(JSON.stringify(out));
}
`;

function runLint(request: unknown): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', LINT, JSON.stringify(request)], {
    cwd: root,
    encoding: 'utf8',
  });
  return JSON.parse(out) as unknown;
}

interface Finding {
  /** The rule, or null for a parse error. */
  readonly rule: string | null;
  readonly id?: string;
  readonly line: number;
  readonly message: string;
}

function findings(samples: readonly Sample[]): Finding[][] {
  return runLint({ samples }) as Finding[][];
}

/** What ESLint reports for each sample, as `<messageId>@<line>` (anything but this rule's findings as itself). */
function lint(samples: readonly Sample[]): string[][] {
  return findings(samples).map((messages) => messages.map((m) =>
    m.rule === 'lambda-mesh/module-boundaries' ? `${m.id}@${m.line}` : `${m.rule ?? 'fatal'}: ${m.message}`));
}

const CROSS = 'crossModulePrivate';
const OUTSIDE = 'internalFromOutside';

/** A sample at `file` (relative to the repository) made of `lines`. */
function at(file: string, ...lines: string[]): Sample {
  return { file, code: `${lines.join('\n')}\n` };
}

describe('lambda-mesh/module-boundaries', () => {
  test('inside constructs/: another module\'s private/ fails, the own module\'s private/ and internal.ts pass', () => {
    expect(lint([
      at('constructs/consul/sample.ts', "import { newMeshKey } from '../core/private/kms';"),
      at('constructs/consul/sample.ts', "import { renderAgentConfig } from './private/agent-config';"),
      at('constructs/consul/sample.ts',
        "import { newMeshKey } from '../core/internal';",
        "import { Mesh } from '../mesh';"),
      at('constructs/consul/private/sample.ts',
        "import { POLICY } from './acl-policies';",
        "import { newMeshKey } from '../../core/private/kms';"),
      at('constructs/services/private/sample.ts', "export { CONSUL_ECS } from '../../consul/private/consul-ecs';"),
      at('constructs/services/private/sample.ts', "export * from '../../consul/private/consul-ecs.ts';"),
      at('constructs/eks/sample.ts', "const kms = require('../core/private/kms');"),
    ])).toEqual([[`${CROSS}@1`], [], [], [`${CROSS}@2`], [`${CROSS}@1`], [`${CROSS}@1`], [`${CROSS}@1`]]);
  });

  test('a Lambda handler may import the shared handler runtime of another module, and nothing else private', () => {
    expect(lint([
      at('constructs/consul/private/auth-method-handler/index.ts',
        "import { log } from '../../../core/private/handler-log';",
        "import type { CustomResourceEvent } from '../../../core/private/cfn-response';",
        "import { consulClient } from '../../../intentions/private/consul-client';",
        "import { newMeshKey } from '../../../core/private/kms';",
        "import { renderIntentions } from '../../../intentions/private/config-entries';"),
      // The exception is for handler directories only.
      at('constructs/consul/auth-method.ts', "import { log } from '../core/private/handler-log';"),
    ])).toEqual([[`${CROSS}@4`, `${CROSS}@5`], [`${CROSS}@1`]]);
  });

  test('lib/, bin/, scripts/, examples/ and bench/ may import neither private/ files nor internal entry points', () => {
    expect(lint([
      at('lib/sample.ts',
        "import { stageFiles } from '../constructs/core/private/stage';",
        "import { newMeshKey } from '../constructs/core/internal';",
        "import { Mesh } from '../constructs/mesh';",
        "import { MeshKey, StagedDirectory } from '../constructs';"),
      at('lib/config/sample.ts', "import { HTTP_METHODS } from '../../constructs/mesh/private/http-match';"),
      at('bin/sample.ts', "const kms = require('../constructs/core/private/kms');"),
      at('examples/order-platform/sample.ts', "void import('../../constructs/k8s/private/validation');"),
      at('bench/sample.ts', "import { findWorkload } from '../constructs/services/internal';"),
      at('scripts/sample.ts', "import { HANDLERS } from '../constructs/core/private/handler-code';"),
      // The package build bundles the library's own handlers.
      at('scripts/bundle-handlers.ts', "import { HANDLERS } from '../constructs/core/private/handler-code';"),
    ])).toEqual([[`${OUTSIDE}@1`, `${OUTSIDE}@2`], ...Array(5).fill([`${OUTSIDE}@1`]), []]);
  });

  test('the message says where to import from instead', () => {
    const [[cross], [outside]] = findings([
      at('constructs/consul/sample.ts', "import { newMeshKey } from '../core/private/kms';"),
      at('lib/sample.ts', "import { newMeshKey } from '../constructs/core/internal';"),
    ]);
    expect(cross.message).toBe("'../core/private/kms' is private to the core module: import what it shares from "
      + 'constructs/core/internal.ts or its index.ts, or move the helper to the module that owns it.');
    expect(outside.message).toBe("'../constructs/core/internal' is a library internal (the core module's internal "
      + "entry point): lib/ uses the package's public exports, constructs/<module> (its index.ts) or "
      + 'constructs/index.ts.');
  });

  test('the repository\'s config applies it as an error to everything but test/', () => {
    const files = ['constructs/consul/cluster.ts', 'lib/environment.ts', 'bin/app.ts', 'scripts/synth.ts'];
    expect(runLint({ configFor: [...files, 'test/util.ts'] })).toEqual({
      'constructs/consul/cluster.ts': [2],
      'lib/environment.ts': [2],
      'bin/app.ts': [2],
      'scripts/synth.ts': [2],
      'test/util.ts': null,
    });
  });
});
