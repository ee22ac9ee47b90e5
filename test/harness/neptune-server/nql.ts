/**
 * The part of NQL (Neptune Query Language) the test server evaluates: clauses
 * `` `path`:type OP value `` (OP `=`, `==`, `!=`, `>`, `>=`, `<`, `<=`, `CONTAINS`, `NOT CONTAINS`,
 * `MATCHES`, `NOT MATCHES`, `EXISTS`), values quoted or bare, joined by `AND`/`OR`, negated by
 * `NOT`, grouped by parentheses — what the 2.x client and neptune-query write themselves (the
 * latter quotes numbers, and datetimes as ISO text with an offset), and what a user's `--query`
 * holds in the tests. Anything else is a syntax error, as the real server answers it (400
 * "Syntax error").
 */
import { comparable } from './store.js';

export class NqlSyntaxError extends Error {}

type Node = { all: Node[] } | { any: Node[] } | { not: Node } | { path: string; op: string; value: string };

/**
 * Whether attributes match a query. `valueOf` gives the value a clause compares: a number, a
 * boolean, text, a Date (compared with the clause's ISO time) or a list (a string set); by default
 * the 2.x store's attributes.
 */
export function nqlMatches<A>(query: string | undefined, attributes: Map<string, A>, valueOf: (a: A) => unknown = comparable as (a: A) => unknown): boolean {
  const text = (query ?? '').trim();
  if (text === '' || text === '()') return true;
  return evaluate(parse(text), (path) => {
    const a = attributes.get(path);
    return a === undefined ? undefined : { value: valueOf(a) };
  });
}

function evaluate(node: Node, lookup: (path: string) => { value: unknown } | undefined): boolean {
  if ('all' in node) return node.all.every((n) => evaluate(n, lookup));
  if ('any' in node) return node.any.some((n) => evaluate(n, lookup));
  if ('not' in node) return !evaluate(node.not, lookup);
  const attribute = lookup(node.path);
  if (node.op === 'EXISTS') return attribute !== undefined;
  if (!attribute) return node.op === '!=' || node.op.startsWith('NOT ');
  const have = attribute.value;
  if (node.op.startsWith('NOT ')) return !evaluate({ ...node, op: node.op.slice(4) }, lookup);
  if (Array.isArray(have)) {
    const inSet = have.includes(node.value);
    return node.op === '!=' ? !inSet : inSet;
  }
  if (node.op === 'CONTAINS') return String(have).includes(node.value);
  if (node.op === 'MATCHES') return new RegExp(node.value).test(String(have));
  const [a, b] =
    have instanceof Date ? [have.getTime(), Date.parse(node.value)] : typeof have === 'number' ? [have, Number(node.value)] : typeof have === 'boolean' ? [String(have), node.value.toLowerCase()] : [String(have), node.value];
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

const TOKEN = /\s*(\(|\)|AND\b|OR\b|NOT\b|`[^`]*`(?::\w+)*|"(?:[^"\\]|\\.)*"|==|!=|>=|<=|=|>|<|CONTAINS\b|EXISTS\b|[^\s()`"]+)/iy;

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
    const m = name ? /^`([^`]*)`(?::\w+)*$/.exec(name) ?? /^([^:]+)(?::\w+)*$/.exec(name) : null;
    if (!m) throw new NqlSyntaxError(`expected an attribute, found ${name ?? 'the end'}`);
    let op = tokens[i++]?.toUpperCase();
    if (!op) throw new NqlSyntaxError('expected an operator');
    if (op === 'NOT') op = `NOT ${tokens[i++]?.toUpperCase() ?? ''}`;
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
