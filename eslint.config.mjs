// ESLint flat config: typescript-eslint's type-checked rules over all TypeScript sources, and the library's module
// boundaries (lambda-mesh/module-boundaries, below).
import * as path from 'node:path';
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

const ROOT = import.meta.dirname;
const CONSTRUCTS = path.join(ROOT, 'constructs');

/**
 * What the Lambda handlers (constructs/<module>/private/<name>-handler/) share across modules: runtime code without
 * aws-cdk-lib, bundled into each handler by esbuild. They import it from its private/ file: the handler directory
 * is the asset's source (its fingerprint is the asset hash), so pointing those imports elsewhere would replace every
 * handler's code on the next deploy, and an entry point such as core/internal.ts would pull aws-cdk-lib into the
 * bundles.
 */
const HANDLER_RUNTIME = new Set([
  'core/private/cfn-response',
  'core/private/handler-log',
  'intentions/private/consul-api',
  'intentions/private/consul-client',
  'intentions/private/consul-json',
]);

/** Files outside constructs/ that may reach in: the package build bundles the library's own handlers. */
const BUILD_INTERNALS = new Map([['scripts/bundle-handlers', new Set(['core/private/handler-code'])]]);

/** `p` with `/` separators and without a .ts/.js extension. */
function modulePath(p) {
  return p.split(path.sep).join('/').replace(/\.(ts|js|mjs|cjs)$/, '');
}

/**
 * lambda-mesh/module-boundaries: a module's private/ is its own. Inside constructs/, a file may import its own
 * module's private/ files, and another module's only through that module's index.ts or internal.ts (its helpers
 * for the other modules, not exported by the package). Outside constructs/ (lib/, bin/, scripts/, examples/,
 * bench/), nothing imports a private/ file or an internal.ts: the app uses the package's public exports.
 */
const moduleBoundaries = {
  meta: {
    type: 'problem',
    docs: {
      description: "Forbids importing another module's private/ code, and library internals outside constructs/",
    },
    schema: [],
    messages: {
      crossModulePrivate: "'{{source}}' is private to the {{target}} module: import what it shares from "
        + 'constructs/{{target}}/internal.ts or its index.ts, or move the helper to the module that owns it.',
      internalFromOutside: "'{{source}}' is a library internal ({{what}}): {{where}} uses the package's public "
        + 'exports, constructs/<module> (its index.ts) or constructs/index.ts.',
    },
  },
  create(context) {
    const file = context.filename;
    const fromRepo = modulePath(path.relative(ROOT, file));
    if (fromRepo.startsWith('../') || path.isAbsolute(fromRepo)) {
      return {};
    }
    const fromConstructs = fromRepo.startsWith('constructs/') ? fromRepo.slice('constructs/'.length) : undefined;
    const fromModule = fromConstructs?.split('/')[0];
    const isHandler = fromConstructs !== undefined && /^[^/]+\/private\/[^/]+-handler\//.test(fromConstructs);
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) {
        return;
      }
      const target = modulePath(path.relative(CONSTRUCTS, path.resolve(path.dirname(file), source)));
      if (target.startsWith('../') || target === '..' || path.isAbsolute(target)) {
        return;
      }
      const [toModule, ...rest] = target.split('/');
      const isPrivate = rest.includes('private');
      const isInternal = rest.length === 1 && rest[0] === 'internal';
      if (fromModule !== undefined) {
        if (isPrivate && toModule !== fromModule && !(isHandler && HANDLER_RUNTIME.has(target))) {
          context.report({ node, messageId: 'crossModulePrivate', data: { source, target: toModule } });
        }
      } else if ((isPrivate || isInternal) && !BUILD_INTERNALS.get(fromRepo)?.has(target)) {
        const what = `the ${toModule} module's ${isPrivate ? 'private code' : 'internal entry point'}`;
        const where = `${fromRepo.split('/')[0]}/`;
        context.report({ node, messageId: 'internalFromOutside', data: { source, what, where } });
      }
    };
    const fromSource = (node) => check(node.source, node.source?.value);
    return {
      ImportDeclaration: fromSource,
      ExportNamedDeclaration: fromSource,
      ExportAllDeclaration: fromSource,
      ImportExpression: (node) => check(node.source, node.source.type === 'Literal' ? node.source.value : undefined),
      TSImportEqualsDeclaration: (node) => {
        const ref = node.moduleReference;
        if (ref.type === 'TSExternalModuleReference') {
          check(ref.expression, ref.expression.value);
        }
      },
      CallExpression: (node) => {
        const [arg] = node.arguments;
        if (node.callee.type === 'Identifier' && node.callee.name === 'require' && arg?.type === 'Literal') {
          check(arg, arg.value);
        }
      },
    };
  },
};

/**
 * The module boundaries, as config objects: the repository's config below ends with them, and
 * test/eslint-config.test.ts lints samples with exactly these (without the type-checked rules, which need files on
 * disk). test/ is left out: tests check private helpers directly.
 */
export const moduleBoundaryConfigs = [
  {
    files: ['constructs/**/*.ts', 'lib/**/*.ts', 'bin/**/*.ts', 'scripts/**/*.ts', 'examples/**/*.ts', 'bench/**/*.ts'],
    plugins: { 'lambda-mesh': { rules: { 'module-boundaries': moduleBoundaries } } },
    rules: { 'lambda-mesh/module-boundaries': 'error' },
  },
];

export default tseslint.config(
  {
    ignores: ['.scratch/**', 'eslint.config.mjs', 'node_modules/**', 'cdk.out/**', 'dist/**', 'build/**', 'coverage/**', '**/*.js', '**/*.d.ts', 'constructs/k8s/imports/**'],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'eqeqeq': ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['constructs/**/*.ts'],
    rules: {
      // The library never prints: it reports through errors and construct annotations.
      'no-console': 'error',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  ...moduleBoundaryConfigs,
);
