/**
 * Bicep syntax checking with a real Bicep grammar (tree-sitter-bicep, compiled to wasm) —
 * no Bicep CLI can be installed here. Also small parse-tree helpers the drift test uses to
 * read values that are written in the templates rather than passed as parameters.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Language, Parser, type Node, type Tree } from 'web-tree-sitter';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const INFRA_DIR = path.join(REPO_ROOT, 'infra');

const GRAMMAR_WASM = path.join(REPO_ROOT, 'node_modules', 'tree-sitter-bicep', 'tree-sitter-bicep.wasm');

let parserPromise: Promise<Parser> | undefined;

/** One shared parser with the Bicep language loaded. */
export function bicepParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    await Parser.init();
    const language = await Language.load(GRAMMAR_WASM);
    const parser = new Parser();
    parser.setLanguage(language);
    return parser;
  })();
  return parserPromise;
}

export async function parseBicep(source: string): Promise<Tree> {
  const tree = (await bicepParser()).parse(source);
  if (!tree) throw new Error('tree-sitter returned no tree');
  return tree;
}

export interface SyntaxProblem {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  message: string;
}

function snippet(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 40 ? `${oneLine.slice(0, 40)}…` : oneLine;
}

/** Every ERROR and MISSING node of a tree, with its 1-based line:column. */
export function syntaxProblems(tree: Tree): SyntaxProblem[] {
  const problems: SyntaxProblem[] = [];
  const visit = (node: Node): void => {
    if (node.isError || node.isMissing) {
      const { row, column } = node.startPosition;
      problems.push({
        line: row + 1,
        column: column + 1,
        message: node.isMissing ? `missing ${node.type}` : `syntax error near "${snippet(node.text)}"`,
      });
      if (node.isMissing) return;
    }
    if (!node.hasError && !node.isMissing) return;
    for (const child of node.children) visit(child);
  };
  visit(tree.rootNode);
  if (tree.rootNode.hasError && problems.length === 0) {
    problems.push({ line: 1, column: 1, message: 'syntax error (no ERROR node located)' });
  }
  return problems;
}

/** Parses a source text and formats its problems as `file:line:column: message`. */
export async function checkBicepSource(source: string, label: string): Promise<string[]> {
  const tree = await parseBicep(source);
  try {
    return syntaxProblems(tree).map((p) => `${label}:${p.line}:${p.column}: ${p.message}`);
  } finally {
    tree.delete();
  }
}

/** Every `.bicep` file under a folder, repo-relative, sorted. */
export function listBicepFiles(dir: string = INFRA_DIR): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.bicep')) out.push(path.relative(REPO_ROOT, full));
    }
  };
  walk(dir);
  return out.sort();
}

export function readRepoFile(relative: string): string {
  return readFileSync(path.join(REPO_ROOT, relative), 'utf8');
}

/** The key of an `object_property` node (identifier or quoted string). */
function propertyKey(prop: Node): string | undefined {
  const key = prop.namedChildren[0];
  if (!key) return undefined;
  if (key.type === 'string') return stringLiteral(key);
  return key.text;
}

/** The value of a string node without interpolation, else undefined. */
export function stringLiteral(node: Node): string | undefined {
  if (node.type !== 'string') return undefined;
  if (node.namedChildren.some((c) => c?.type === 'interpolation')) return undefined;
  const raw = node.text;
  if (raw.startsWith("'''")) return raw.slice(3, -3);
  return raw.slice(1, -1).replace(/\\'/g, "'").replace(/\\\\/g, '\\');
}

/** The source with every comment blanked out (same offsets), so scans see code only. */
export function codeOnly(tree: Tree, source: string): string {
  let out = source;
  for (const c of tree.rootNode.descendantsOfType('comment')) {
    if (!c) continue;
    out = out.slice(0, c.startIndex) + ' '.repeat(c.endIndex - c.startIndex) + out.slice(c.endIndex);
  }
  return out;
}

export interface BicepProperty {
  key: string;
  /** The value's source text. */
  valueText: string;
  /** The value when it is a plain string literal. */
  literal: string | undefined;
  line: number;
}

/** Every object property (`key: value`) in a Bicep file, in source order. */
export function objectProperties(tree: Tree): BicepProperty[] {
  return tree.rootNode.descendantsOfType('object_property').flatMap((prop) => {
    if (!prop) return [];
    const key = propertyKey(prop);
    const value = prop.namedChildren[prop.namedChildren.length - 1];
    if (key === undefined || !value || prop.namedChildren.length < 2) return [];
    return [{ key, valueText: value.text, literal: stringLiteral(value), line: prop.startPosition.row + 1 }];
  });
}

export interface BicepDeclaration {
  kind: 'param' | 'output' | 'module' | 'resource';
  name: string;
  /** For modules: the path; for resources: the type@apiVersion. */
  target?: string;
  /** For params: whether a default value is given (or the type is nullable). */
  optional?: boolean;
}

const DECLARATION_KINDS: Record<string, BicepDeclaration['kind']> = {
  parameter_declaration: 'param',
  output_declaration: 'output',
  module_declaration: 'module',
  resource_declaration: 'resource',
};

/** Top-level declarations of a Bicep file. */
export function declarations(tree: Tree): BicepDeclaration[] {
  const out: BicepDeclaration[] = [];
  for (const node of tree.rootNode.namedChildren) {
    if (!node) continue;
    const kind = DECLARATION_KINDS[node.type];
    if (!kind) continue;
    const named = node.namedChildren.filter((c): c is Node => c !== null);
    const name = named.find((c) => c.type === 'identifier')?.text;
    if (!name) continue;
    const decl: BicepDeclaration = { kind, name };
    if (kind === 'module' || kind === 'resource') {
      const target = named.find((c) => c.type === 'string');
      if (target) decl.target = stringLiteral(target) ?? target.text;
    }
    if (kind === 'param') {
      // `param x type = default` has a value after the type; `type?` is nullable.
      const typeIndex = named.findIndex((c) => c.type === 'type');
      const typeNode = named[typeIndex];
      decl.optional = typeIndex >= 0 && (typeIndex < named.length - 1 || typeNode?.namedChildren[0]?.type === 'nullable_type');
    }
    out.push(decl);
  }
  return out;
}

/**
 * `module x '<path>' = ... { params: { a: ..., b: ... } }`: for each module declaration the
 * referenced path and the names of the params it passes.
 */
export function moduleParamUses(tree: Tree): { module: string; path: string; params: string[]; line: number }[] {
  const out: { module: string; path: string; params: string[]; line: number }[] = [];
  for (const node of tree.rootNode.namedChildren) {
    if (!node || node.type !== 'module_declaration') continue;
    const named = node.namedChildren.filter((c): c is Node => c !== null);
    const name = named.find((c) => c.type === 'identifier')?.text ?? '?';
    const pathNode = named.find((c) => c.type === 'string');
    const modulePath = pathNode ? (stringLiteral(pathNode) ?? '') : '';
    const params: string[] = [];
    for (const prop of node.descendantsOfType('object_property')) {
      if (!prop || propertyKey(prop) !== 'params') continue;
      // Only the module body's own `params:` (not a nested object with a params key).
      const value = prop.namedChildren[prop.namedChildren.length - 1];
      if (!value || value.type !== 'object') continue;
      for (const p of value.namedChildren) {
        if (p?.type === 'object_property') {
          const k = propertyKey(p);
          if (k) params.push(k);
        }
      }
      break;
    }
    out.push({ module: name, path: modulePath, params, line: node.startPosition.row + 1 });
  }
  return out;
}
