/**
 * Lists the longest functions (declarations, methods, constructors, accessors, function expressions and arrow
 * functions) of the hand-written sources in constructs/, lib/, bin/ and scripts/, by line count, longest first:
 *
 *   npx tsx scripts/longest-functions.ts            # the 25 longest
 *   npx tsx scripts/longest-functions.ts --top 50
 *
 * Tests, declaration files and the generated code in constructs/k8s/imports/ are left out. A nested function is
 * listed on its own and also counts towards the lines of the function around it.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..');
const ROOTS = ['constructs', 'lib', 'bin', 'scripts'];
const SKIP_DIRS = new Set(['node_modules', 'build', 'cdk.out', 'dist', 'coverage']);
const GENERATED = path.join('constructs', 'k8s', 'imports');

interface FunctionLength {
  readonly lines: number;
  readonly file: string;
  readonly line: number;
  readonly name: string;
}

function main(argv: readonly string[]): void {
  const top = parseTop(argv);
  const found = ROOTS.flatMap((dir) => sourceFiles(dir)).flatMap((file) => functionsOf(file));
  found.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
  const shown = found.slice(0, top);
  const width = String(shown[0]?.lines ?? 0).length;
  for (const f of shown) {
    console.log(`${String(f.lines).padStart(width)}  ${f.file}:${f.line}  ${f.name}`);
  }
}

function parseTop(argv: readonly string[]): number {
  const at = argv.indexOf('--top');
  if (at < 0) {
    return 25;
  }
  const top = Number(argv[at + 1]);
  if (!Number.isInteger(top) || top < 1) {
    console.error(`longest-functions: --top expects a positive whole number, got ${JSON.stringify(argv[at + 1])}`);
    process.exit(2);
  }
  return top;
}

/** The hand-written TypeScript sources under `dir` (relative to the repository), in a stable order. */
function sourceFiles(dir: string): string[] {
  if (dir === GENERATED || SKIP_DIRS.has(path.basename(dir)) || !fs.existsSync(path.join(root, dir))) {
    return [];
  }
  const entries = fs.readdirSync(path.join(root, dir), { withFileTypes: true });
  return entries.sort((a, b) => a.name.localeCompare(b.name)).flatMap((entry) => {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      return sourceFiles(rel);
    }
    const source = /\.(ts|tsx|mts|cts)$/.test(entry.name) && !/\.d\.[mc]?ts$/.test(entry.name);
    return source && !/\.test\.tsx?$/.test(entry.name) ? [rel] : [];
  });
}

function functionsOf(file: string): FunctionLength[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: FunctionLength[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ lines: end - start + 1, file, line: start + 1, name: nameOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** A readable name: `Class.method`, `Class.constructor`, `fn`, or where an anonymous function is assigned. */
function nameOf(node: ts.Node): string {
  const own = ownName(node);
  const cls = enclosingClass(node);
  if (ts.isConstructorDeclaration(node)) {
    return `${cls ?? '<class>'}.constructor`;
  }
  if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) && cls) {
    const kind = ts.isGetAccessor(node) ? 'get ' : ts.isSetAccessor(node) ? 'set ' : '';
    return `${kind}${cls}.${own ?? '<method>'}`;
  }
  if (own) {
    return own;
  }
  // Anonymous: name it after what it is assigned to, or what it is passed to.
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    const target = parent.name.getText();
    return ts.isPropertyDeclaration(parent) && cls ? `${cls}.${target}` : target;
  }
  if (ts.isCallExpression(parent)) {
    return `<${ts.isArrowFunction(node) ? 'arrow' : 'function'} passed to ${calleeName(parent.expression)}>`;
  }
  return `<${ts.isArrowFunction(node) ? 'arrow' : 'function'}>`;
}

function ownName(node: ts.Node): string | undefined {
  const name = (node as { name?: ts.Node }).name;
  return name ? name.getText() : undefined;
}

function enclosingClass(node: ts.Node): string | undefined {
  const parent = node.parent;
  if (parent && (ts.isClassDeclaration(parent) || ts.isClassExpression(parent))) {
    return parent.name?.getText() ?? '<anonymous class>';
  }
  return undefined;
}

function calleeName(expr: ts.Expression): string {
  const text = expr.getText().replace(/\s+/g, '');
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

main(process.argv.slice(2));
