/**
 * The part of NQL (Neptune Query Language, 2.x) the test server evaluates: clauses
 * `` `path`:type OP value `` (OP `=`, `==`, `!=`, `>`, `>=`, `<`, `<=`, `CONTAINS`, `EXISTS`),
 * values quoted or bare, joined by `AND`/`OR`, negated by `NOT`, grouped by parentheses — what the
 * 2.x client writes itself, and what a user's `--query` holds in the tests. Anything else is a
 * syntax error, as the real server answers it (400 "Syntax error").
 */
import { comparable, type Attribute } from './store.js';

export class NqlSyntaxError extends Error {}

type Node = { all: Node[] } | { any: Node[] } | { not: Node } | { path: string; op: string; value: string };

export function nqlMatches(query: string | undefined, attributes: Map<string, Attribute>): boolean {
  const text = (query ?? '').trim();
  if (text === '' || text === '()') return true;
  return evaluate(parse(text), attributes);
}

function evaluate(node: Node, attributes: Map<string, Attribute>): boolean {
  if ('all' in node) return node.all.every((n) => evaluate(n, attributes));
  if ('any' in node) return node.any.some((n) => evaluate(n, attributes));
  if ('not' in node) return !evaluate(node.not, attributes);
  const attribute = attributes.get(node.path);
  if (node.op === 'EXISTS') return attribute !== undefined;
  if (!attribute) return node.op === '!=';
  const have = comparable(attribute);
  if (Array.isArray(have)) {
    const inSet = have.includes(node.value);
    return node.op === '!=' ? !inSet : inSet;
  }
  if (node.op === 'CONTAINS') return String(have).includes(node.value);
  const [a, b] = typeof have === 'number' ? [have, Number(node.value)] : typeof have === 'boolean' ? [String(have), node.value.toLowerCase()] : [String(have), node.value];
  switch (node.op) {
    case '=':
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    default:
      throw new NqlSyntaxError(`unknown operator ${node.op}`);
  }
}

const TOKEN = /\s*(\(|\)|AND\b|OR\b|NOT\b|`[^`]*`(?::\w+)?|"(?:[^"\\]|\\.)*"|==|!=|>=|<=|=|>|<|CONTAINS\b|EXISTS\b|[^\s()`"]+)/iy;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) {
      if (text.slice(at).trim() === '') break;
      throw new NqlSyntaxError(`cannot read the query at "${text.slice(at, at + 20)}"`);
    }
    tokens.push(m[1]!);
  }
  return tokens;
}

function parse(text: string): Node {
  const tokens = tokenize(text);
  let i = 0;
  const peek = () => tokens[i]?.toUpperCase();
  const or = (): Node => {
    const parts = [and()];
    while (peek() === 'OR') {
      i++;
      parts.push(and());
    }
    return parts.length === 1 ? parts[0]! : { any: parts };
  };
  const and = (): Node => {
    const parts = [unary()];
    while (peek() === 'AND') {
      i++;
      parts.push(unary());
    }
    return parts.length === 1 ? parts[0]! : { all: parts };
  };
  const unary = (): Node => {
    if (peek() === 'NOT') {
      i++;
      return { not: unary() };
    }
    if (peek() === '(') {
      i++;
      const inner = or();
      if (tokens[i++] !== ')') throw new NqlSyntaxError('a parenthesis is not closed');
      return inner;
    }
    return clause();
  };
  const clause = (): Node => {
    const name = tokens[i++];
    const m = name ? /^`([^`]*)`(?::\w+)?$/.exec(name) ?? /^([^:]+)(?::\w+)?$/.exec(name) : null;
    if (!m) throw new NqlSyntaxError(`expected an attribute, found ${name ?? 'the end'}`);
    const op = tokens[i++]?.toUpperCase();
    if (!op) throw new NqlSyntaxError('expected an operator');
    if (op === 'EXISTS') return { path: m[1]!, op, value: '' };
    const raw = tokens[i++];
    if (raw === undefined) throw new NqlSyntaxError('expected a value');
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    return { path: m[1]!, op, value };
  };
  const node = or();
  if (i < tokens.length) throw new NqlSyntaxError(`unexpected ${tokens[i]}`);
  return node;
}
