/**
 * A small renderer for Helm chart templates, so the chart in helm/hexz can be rendered and checked
 * where `helm` itself is not available (see helm/hexz/README.md, "What is tested").
 *
 * It implements the subset of Go's text/template and of Helm/Sprig functions that the chart uses, and
 * it is deliberately strict where Helm is strict, so a template that would fail under `helm template`
 * fails here too: a field of a missing value is an error ("nil pointer evaluating"), a function given
 * the wrong type of argument is an error (`nindent` of a float, `hasPrefix` of null), comparing an
 * int with a float is an error. Numbers from values files are float64 as in Helm (values pass
 * through JSON), so printing 1000000 gives "1e+06" exactly as Helm does, and `| int` is needed.
 * Anything outside the subset (an unknown function, `block`, `tpl`, `.Files`) throws instead of
 * guessing. Printing a map or a list is an error too: in a template that is always a bug.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';

export class TemplateError extends Error {}

/** The top-level object templates see as `.` (Helm's built-in objects that the chart uses). */
export interface HelmContext {
  Values: Record<string, unknown>;
  Release: { Name: string; Namespace: string; Service: string; IsInstall: boolean; IsUpgrade: boolean };
  Chart: { Name: string; Version: string; AppVersion: string; [k: string]: unknown };
  Capabilities?: Record<string, unknown>;
  Template?: { Name: string; BasePath: string };
}

// ---------------------------------------------------------------------------------------------
// Values: Go ints are bigint, float64 (every number from a values file) is number.

type Value = unknown;

/**
 * Go's fmt %v of a float64: strconv's 'g' with the shortest digits, which switches to exponent form
 * when the decimal exponent is < -4 or >= 6 (precision 6 for that decision). So Helm prints the value
 * 1000000 as "1e+06" unless the template converts it with `int`.
 */
export function formatGoFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  // Shortest round-trip digits, as strconv.FormatFloat(f, 'g', -1, 64) computes them.
  const [mant, expStr] = f.toExponential().split('e');
  const exp = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  if (exp < -4 || exp >= 6) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp));
    return `${neg ? '-' : ''}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  return (neg ? '-' : '') + fixed(digits, exp);
}

function fixed(digits: string, exp: number): string {
  if (exp < 0) return `0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return digits + '0'.repeat(exp + 1 - digits.length);
  return `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

function kindOf(v: Value): string {
  if (v === undefined || v === null) return 'invalid';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'float64';
  if (Array.isArray(v)) return 'slice';
  if (typeof v === 'object') return 'map';
  return typeof v;
}

function isMap(v: Value): v is Record<string, Value> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Go template truth: false, 0, nil and empty strings, lists and maps are false. */
function truth(v: Value): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** fmt.Sprint of a scalar; composites are refused (printing one into a manifest is a bug). */
function printValue(v: Value, where: string): string {
  if (v === undefined || v === null) return ''; // Helm removes "<no value>"
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return formatGoFloat(v);
  throw new TemplateError(`${where}: printing a ${kindOf(v)} (use toYaml)`);
}

/** Sprig's strval: strings as they are, everything else as fmt %v. */
function strval(v: Value): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return formatGoFloat(v);
  throw new TemplateError(`toString of a ${kindOf(v)}`);
}

function plain(v: Value): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isMap(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

/** Helm's toYaml: keys sorted (it goes through JSON), the final newline removed. */
export function toYaml(v: Value): string {
  return stringify(sortKeys(plain(v)), { lineWidth: 0 }).replace(/\n$/, '');
}

// ---------------------------------------------------------------------------------------------
// Lexing and parsing.

type Operand =
  | { k: 'field'; base: 'dot' | 'var'; name?: string; path: string[] }
  | { k: 'ident'; name: string }
  | { k: 'lit'; v: Value }
  | { k: 'paren'; p: Pipeline; path: string[] };
type Command = Operand[];
interface Pipeline {
  decl?: string[];
  assign?: boolean;
  cmds: Command[];
}
type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; p: Pipeline; where: string }
  | { t: 'if'; branches: Array<{ cond: Pipeline; body: Node[] }>; else?: Node[]; where: string }
  | { t: 'with'; branches: Array<{ cond: Pipeline; body: Node[] }>; else?: Node[]; where: string }
  | { t: 'range'; p: Pipeline; body: Node[]; else?: Node[]; where: string }
  | { t: 'template'; name: string; p?: Pipeline; where: string };

/** `adjacent`: no white space before the token (`(…).field` chains only then). */
type Token = { k: 'str' | 'num' | 'ident' | 'field' | 'var' | 'op'; v: string; adjacent?: boolean };

function tokenize(src: string, where: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const start = i;
    const count = out.length;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < src.length && src[j] !== '"'; j++) {
        if (src[j] === '\\') {
          const e = src[++j];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" };
          if (!(e in map)) throw new TemplateError(`${where}: unsupported escape \\${e}`);
          s += map[e];
        } else s += src[j];
      }
      if (j >= src.length) throw new TemplateError(`${where}: unterminated string`);
      out.push({ k: 'str', v: s });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError(`${where}: unterminated raw string`);
      out.push({ k: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '(' || c === ')' || c === '|' || c === ',') {
      out.push({ k: 'op', v: c });
      i++;
    } else if (c === ':' && src[i + 1] === '=') {
      out.push({ k: 'op', v: ':=' });
      i += 2;
    } else if (c === '=') {
      out.push({ k: 'op', v: '=' });
      i++;
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*/.exec(src.slice(i))!;
      out.push({ k: 'var', v: m[0] });
      i += m[0].length;
    } else if (c === '.') {
      const m = /^(?:\.[A-Za-z0-9_]+)+|^\./.exec(src.slice(i))!;
      out.push({ k: 'field', v: m[0] });
      i += m[0].length;
    } else if (/[-0-9]/.test(c)) {
      const m = /^-?[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
      if (!m) throw new TemplateError(`${where}: bad number near ${src.slice(i, i + 10)}`);
      out.push({ k: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ k: 'ident', v: m[0] });
      i += m[0].length;
    } else {
      throw new TemplateError(`${where}: unexpected character ${JSON.stringify(c)}`);
    }
    if (out.length > count) out[out.length - 1].adjacent = start > 0 && !/\s/.test(src[start - 1]);
  }
  return out;
}

/** Parses one pipeline from tokens[pos…]; stops at ')' or the end. */
function parsePipeline(tokens: Token[], where: string, allowDecl = true): Pipeline {
  let pos = 0;
  const p: Pipeline = { cmds: [] };
  if (allowDecl) {
    // `$x :=`, `$x =`, `$k, $v :=`
    const vars: string[] = [];
    let j = 0;
    while (tokens[j]?.k === 'var' && !tokens[j].v.includes('.', 1)) {
      vars.push(tokens[j].v);
      if (tokens[j + 1]?.k === 'op' && tokens[j + 1].v === ',') j += 2;
      else {
        j += 1;
        break;
      }
    }
    if (vars.length && tokens[j]?.k === 'op' && (tokens[j].v === ':=' || tokens[j].v === '=')) {
      p.decl = vars;
      p.assign = tokens[j].v === '=';
      pos = j + 1;
    }
  }
  const parseOperands = (): { cmd: Command; next: number } => {
    const cmd: Command = [];
    while (pos < tokens.length) {
      const t = tokens[pos];
      if (t.k === 'op' && (t.v === '|' || t.v === ')')) break;
      if (t.k === 'op' && t.v === '(') {
        let depth = 1;
        let j = pos + 1;
        for (; j < tokens.length && depth; j++) {
          if (tokens[j].k === 'op' && tokens[j].v === '(') depth++;
          if (tokens[j].k === 'op' && tokens[j].v === ')') depth--;
        }
        if (depth) throw new TemplateError(`${where}: unbalanced parentheses`);
        const inner = parsePipeline(tokens.slice(pos + 1, j - 1), where, false);
        pos = j;
        let path: string[] = [];
        if (tokens[pos]?.k === 'field' && tokens[pos].adjacent && tokens[pos].v !== '.') {
          path = tokens[pos].v.slice(1).split('.');
          pos++;
        }
        cmd.push({ k: 'paren', p: inner, path });
        continue;
      }
      pos++;
      switch (t.k) {
        case 'str':
          cmd.push({ k: 'lit', v: t.v });
          break;
        case 'num':
          cmd.push({ k: 'lit', v: t.v.includes('.') ? Number(t.v) : BigInt(t.v) });
          break;
        case 'field':
          cmd.push({ k: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.') });
          break;
        case 'var': {
          const [name, ...path] = t.v.split('.');
          cmd.push({ k: 'field', base: 'var', name, path });
          break;
        }
        case 'ident':
          if (t.v === 'true' || t.v === 'false') cmd.push({ k: 'lit', v: t.v === 'true' });
          else if (t.v === 'nil') cmd.push({ k: 'lit', v: null });
          else cmd.push({ k: 'ident', name: t.v });
          break;
        default:
          throw new TemplateError(`${where}: unexpected ${t.v}`);
      }
    }
    return { cmd, next: pos };
  };
  while (pos < tokens.length) {
    const { cmd } = parseOperands();
    if (!cmd.length) throw new TemplateError(`${where}: empty command`);
    p.cmds.push(cmd);
    if (pos < tokens.length) {
      const t = tokens[pos];
      if (t.k === 'op' && t.v === '|') pos++;
      else throw new TemplateError(`${where}: unexpected ${t.v}`);
    }
  }
  if (!p.cmds.length) throw new TemplateError(`${where}: missing value`);
  return p;
}

interface Parsed {
  root: Node[];
  defines: Map<string, Node[]>;
}

/** Split a template into text and actions (with Go's `{{-`/`-}}` trimming) and build the tree. */
export function parseTemplate(src: string, file: string): Parsed {
  type Item = { kind: 'text'; s: string } | { kind: 'action'; s: string; where: string };
  const items: Item[] = [];
  let i = 0;
  let trimNext = false;
  const lineOf = (at: number) => src.slice(0, at).split('\n').length;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      items.push({ kind: 'text', s: text });
      break;
    }
    let body = open + 2;
    if (src[body] === '-' && /\s/.test(src[body + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      body += 1;
    }
    items.push({ kind: 'text', s: text });
    const where = `${file}:${lineOf(open)}`;
    // Find the closing braces outside of string literals.
    let j = body;
    let quote: string | undefined;
    for (; j < src.length; j++) {
      const c = src[j];
      if (quote) {
        if (c === '\\' && quote === '"') j++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === '`') quote = c;
      else if (src.startsWith('}}', j)) break;
      else if (src.startsWith('/*', j)) {
        const end = src.indexOf('*/', j + 2);
        if (end < 0) throw new TemplateError(`${where}: unterminated comment`);
        j = end + 1;
      }
    }
    if (j >= src.length) throw new TemplateError(`${where}: unclosed action`);
    let inner = src.slice(body, j);
    trimNext = false;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      trimNext = true;
    }
    inner = inner.trim();
    if (!(inner.startsWith('/*') && inner.endsWith('*/'))) items.push({ kind: 'action', s: inner, where });
    i = j + 2;
  }

  const defines = new Map<string, Node[]>();
  type Frame = { kind: 'root' | 'if' | 'with' | 'range' | 'define'; node?: Node; name?: string; body: Node[]; inElse: boolean };
  const stack: Frame[] = [{ kind: 'root', body: [], inElse: false }];
  const top = () => stack[stack.length - 1];
  for (const it of items) {
    if (it.kind === 'text') {
      if (it.s) top().body.push({ t: 'text', s: it.s });
      continue;
    }
    const tokens = tokenize(it.s, it.where);
    const head = tokens[0]?.k === 'ident' ? tokens[0].v : '';
    const rest = tokens.slice(1);
    if (head === 'if' || head === 'with') {
      const node = { t: head, branches: [{ cond: parsePipeline(rest, it.where), body: [] as Node[] }], where: it.where } as Node & { t: 'if' | 'with' };
      top().body.push(node);
      stack.push({ kind: head, node, body: node.branches[0].body, inElse: false });
    } else if (head === 'range') {
      const node: Node = { t: 'range', p: parsePipeline(rest, it.where), body: [], where: it.where };
      top().body.push(node);
      stack.push({ kind: 'range', node, body: node.body, inElse: false });
    } else if (head === 'else') {
      const f = top();
      if (!f.node || f.inElse) throw new TemplateError(`${it.where}: unexpected else`);
      const n = f.node as Extract<Node, { t: 'if' | 'with' | 'range' }>;
      const sub = rest[0]?.k === 'ident' ? rest[0].v : '';
      if ((sub === 'if' && n.t === 'if') || (sub === 'with' && n.t === 'with')) {
        const branch = { cond: parsePipeline(rest.slice(1), it.where), body: [] as Node[] };
        n.branches.push(branch);
        f.body = branch.body;
      } else if (rest.length) {
        throw new TemplateError(`${it.where}: unsupported else form`);
      } else {
        n.else = [];
        f.body = n.else;
        f.inElse = true;
      }
    } else if (head === 'end') {
      const f = stack.pop()!;
      if (f.kind === 'root') throw new TemplateError(`${it.where}: unexpected end`);
      if (f.kind === 'define') defines.set(f.name!, f.node as unknown as Node[]);
    } else if (head === 'define') {
      if (tokens[1]?.k !== 'str') throw new TemplateError(`${it.where}: define needs a name`);
      const body: Node[] = [];
      stack.push({ kind: 'define', name: tokens[1].v, node: body as unknown as Node, body, inElse: false });
    } else if (head === 'template') {
      if (tokens[1]?.k !== 'str') throw new TemplateError(`${it.where}: template needs a name`);
      top().body.push({ t: 'template', name: tokens[1].v, p: tokens.length > 2 ? parsePipeline(tokens.slice(2), it.where) : undefined, where: it.where });
    } else if (['block', 'break', 'continue'].includes(head)) {
      throw new TemplateError(`${it.where}: "${head}" is not supported by this renderer`);
    } else {
      top().body.push({ t: 'action', p: parsePipeline(tokens, it.where), where: it.where });
    }
  }
  if (stack.length !== 1) throw new TemplateError(`${file}: missing {{ end }} for ${top().kind}`);
  return { root: stack[0].body, defines };
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

type Scope = Map<string, Value>;

class Renderer {
  constructor(private readonly defines: Map<string, Node[]>) {}

  renderNodes(nodes: Node[], dot: Value, scopes: Scope[]): string {
    let out = '';
    for (const n of nodes) out += this.renderNode(n, dot, scopes);
    return out;
  }

  private renderNode(n: Node, dot: Value, scopes: Scope[]): string {
    switch (n.t) {
      case 'text':
        return n.s;
      case 'action': {
        const v = this.evalPipeline(n.p, dot, scopes, n.where);
        return n.p.decl ? '' : printValue(v, n.where);
      }
      case 'if':
      case 'with': {
        const inner = [...scopes, new Map()];
        for (const b of n.branches) {
          const v = this.evalPipeline(b.cond, dot, inner, n.where);
          if (truth(v)) return this.renderNodes(b.body, n.t === 'with' ? v : dot, inner);
        }
        return n.else ? this.renderNodes(n.else, dot, inner) : '';
      }
      case 'range': {
        const decl = n.p.decl;
        const v = this.evalPipeline({ cmds: n.p.cmds }, dot, scopes, n.where);
        const entries: Array<[Value, Value]> = Array.isArray(v)
          ? v.map((x, i) => [BigInt(i), x])
          : isMap(v)
            ? Object.keys(v)
                .sort()
                .map((k) => [k, v[k]])
            : v === null || v === undefined
              ? []
              : (() => {
                  throw new TemplateError(`${n.where}: range over a ${kindOf(v)}`);
                })();
        if (!entries.length) return n.else ? this.renderNodes(n.else, dot, [...scopes, new Map()]) : '';
        let out = '';
        for (const [k, x] of entries) {
          const scope: Scope = new Map();
          if (decl?.length === 1) scope.set(decl[0], x);
          if (decl?.length === 2) {
            scope.set(decl[0], k);
            scope.set(decl[1], x);
          }
          out += this.renderNodes(n.body, x, [...scopes, scope]);
        }
        return out;
      }
      case 'template':
        return this.include(n.name, n.p ? this.evalPipeline(n.p, dot, scopes, n.where) : null, n.where);
    }
  }

  include(name: string, data: Value, where: string): string {
    const body = this.defines.get(name);
    if (!body) throw new TemplateError(`${where}: no template "${name}"`);
    return this.renderNodes(body, data, [new Map([['$', data]])]);
  }

  private lookupVar(name: string, scopes: Scope[], where: string): Value {
    for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].has(name)) return scopes[i].get(name);
    throw new TemplateError(`${where}: undefined variable ${name}`);
  }

  private evalPipeline(p: Pipeline, dot: Value, scopes: Scope[], where: string): Value {
    let v: Value;
    let piped = false;
    for (const cmd of p.cmds) {
      v = this.evalCommand(cmd, dot, scopes, where, piped ? { v } : undefined);
      piped = true;
    }
    if (p.decl) {
      if (p.assign) {
        const name = p.decl[0];
        const s = [...scopes].reverse().find((sc) => sc.has(name));
        if (!s) throw new TemplateError(`${where}: assignment to undefined ${name}`);
        s.set(name, v);
      } else scopes[scopes.length - 1].set(p.decl[0], v);
    }
    return v;
  }

  private field(v: Value, path: string[], where: string, label: string): Value {
    let cur = v;
    let seen = label;
    for (const key of path) {
      if (cur === undefined || cur === null) throw new TemplateError(`${where}: nil pointer evaluating ${seen}.${key}`);
      if (!isMap(cur)) throw new TemplateError(`${where}: can't evaluate field ${key} in a ${kindOf(cur)} (${seen})`);
      cur = Object.prototype.hasOwnProperty.call(cur, key) ? cur[key] : undefined;
      seen += `.${key}`;
    }
    return cur;
  }

  private evalOperand(o: Operand, dot: Value, scopes: Scope[], where: string): Value {
    switch (o.k) {
      case 'lit':
        return o.v;
      case 'field':
        return o.base === 'dot' ? this.field(dot, o.path, where, '') : this.field(this.lookupVar(o.name!, scopes, where), o.path, where, o.name!);
      case 'paren':
        return this.field(this.evalPipeline(o.p, dot, scopes, where), o.path, where, '(…)');
      case 'ident':
        return this.call(o.name, [], dot, scopes, where);
    }
  }

  private evalCommand(cmd: Command, dot: Value, scopes: Scope[], where: string, piped?: { v: Value }): Value {
    const [first, ...args] = cmd;
    if (first.k === 'ident') return this.call(first.name, args, dot, scopes, where, piped);
    if (args.length) throw new TemplateError(`${where}: can't give arguments to a non-function`);
    if (piped) throw new TemplateError(`${where}: can't pipe into a non-function`);
    return this.evalOperand(first, dot, scopes, where);
  }

  private call(name: string, argOps: Operand[], dot: Value, scopes: Scope[], where: string, piped?: { v: Value }): Value {
    const lazy = argOps.map((o) => () => this.evalOperand(o, dot, scopes, where));
    if (piped) lazy.push(() => piped.v);
    if (name === 'and' || name === 'or') {
      if (!lazy.length) throw new TemplateError(`${where}: ${name} needs arguments`);
      let v: Value;
      for (const f of lazy) {
        v = f();
        if (name === 'and' ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    const a = lazy.map((f) => f());
    const fn = this.functions[name];
    if (!fn) throw new TemplateError(`${where}: function "${name}" not defined (not supported by this renderer)`);
    return fn(a, where);
  }

  private readonly functions: Record<string, (a: Value[], where: string) => Value> = {
    include: (a, w) => this.include(str(a[0], w, 'include'), a[1], w),
    required: (a, w) => {
      if (a[1] === undefined || a[1] === null || a[1] === '') throw new TemplateError(`${w}: ${str(a[0], w, 'required')}`);
      return a[1];
    },
    fail: (a, w) => {
      throw new TemplateError(`${w}: execution error: ${str(a[0], w, 'fail')}`);
    },
    not: (a) => !truth(a[0]),
    eq: (a, w) => a.slice(1).some((b) => compare(a[0], b, w) === 0),
    ne: (a, w) => compare(a[0], a[1], w) !== 0,
    lt: (a, w) => compare(a[0], a[1], w, true) < 0,
    le: (a, w) => compare(a[0], a[1], w, true) <= 0,
    gt: (a, w) => compare(a[0], a[1], w, true) > 0,
    ge: (a, w) => compare(a[0], a[1], w, true) >= 0,
    len: (a, w) => {
      const v = a[0];
      if (typeof v === 'string' || Array.isArray(v)) return BigInt(v.length);
      if (isMap(v)) return BigInt(Object.keys(v).length);
      throw new TemplateError(`${w}: len of ${kindOf(v)}`);
    },
    default: (a) => (a.length < 2 || !truth(a[1]) ? a[0] : a[1]),
    empty: (a) => !truth(a[0]),
    quote: (a) =>
      a
        .filter((x) => x !== undefined && x !== null)
        .map((x) => JSON.stringify(strval(x)))
        .join(' '),
    squote: (a) =>
      a
        .filter((x) => x !== undefined && x !== null)
        .map((x) => `'${strval(x)}'`)
        .join(' '),
    toString: (a: Value[]) => strval(a[0]),
    int: (a, w) => {
      const v = a[0];
      if (v === undefined || v === null) return 0n;
      if (typeof v === 'bigint') return v;
      if (typeof v === 'number') return BigInt(Math.trunc(v));
      if (typeof v === 'boolean') return v ? 1n : 0n;
      if (typeof v === 'string') return /^-?\d+$/.test(v.trim()) ? BigInt(v.trim()) : 0n;
      throw new TemplateError(`${w}: int of a ${kindOf(v)}`);
    },
    trunc: (a, w) => {
      const n = Number(int(a[0], w, 'trunc'));
      const s = str(a[1], w, 'trunc');
      return n >= 0 ? s.slice(0, n) : s.slice(Math.max(0, s.length + n));
    },
    trimSuffix: (a, w) => {
      const [suf, s] = [str(a[0], w, 'trimSuffix'), str(a[1], w, 'trimSuffix')];
      return suf && s.endsWith(suf) ? s.slice(0, -suf.length) : s;
    },
    trimPrefix: (a, w) => {
      const [pre, s] = [str(a[0], w, 'trimPrefix'), str(a[1], w, 'trimPrefix')];
      return pre && s.startsWith(pre) ? s.slice(pre.length) : s;
    },
    trim: (a, w) => str(a[0], w, 'trim').trim(),
    lower: (a, w) => str(a[0], w, 'lower').toLowerCase(),
    upper: (a, w) => str(a[0], w, 'upper').toUpperCase(),
    replace: (a, w) => str(a[2], w, 'replace').split(str(a[0], w, 'replace')).join(str(a[1], w, 'replace')),
    contains: (a, w) => str(a[1], w, 'contains').includes(str(a[0], w, 'contains')),
    hasPrefix: (a, w) => str(a[1], w, 'hasPrefix').startsWith(str(a[0], w, 'hasPrefix')),
    hasSuffix: (a, w) => str(a[1], w, 'hasSuffix').endsWith(str(a[0], w, 'hasSuffix')),
    indent: (a, w) => indent(Number(int(a[0], w, 'indent')), str(a[1], w, 'indent')),
    nindent: (a, w) => `\n${indent(Number(int(a[0], w, 'nindent')), str(a[1], w, 'nindent'))}`,
    toYaml: (a) => toYaml(a[0]),
    toJson: (a) => JSON.stringify(sortKeys(plain(a[0]))),
    b64enc: (a, w) => Buffer.from(str(a[0], w, 'b64enc')).toString('base64'),
    sha256sum: (a, w) => createHash('sha256').update(str(a[0], w, 'sha256sum')).digest('hex'),
    join: (a, w) => {
      const sep = str(a[0], w, 'join');
      const list = a[1];
      if (!Array.isArray(list)) throw new TemplateError(`${w}: join of a ${kindOf(list)}`);
      return list.map(strval).join(sep);
    },
    first: (a, w) => {
      if (!Array.isArray(a[0])) throw new TemplateError(`${w}: first of a ${kindOf(a[0])}`);
      return a[0][0] ?? null;
    },
    list: (a) => a,
    dict: (a, w) => {
      const out: Record<string, Value> = {};
      for (let i = 0; i < a.length; i += 2) out[str(a[i], w, 'dict')] = a[i + 1] ?? null;
      return out;
    },
    hasKey: (a, w) => {
      if (!isMap(a[0])) throw new TemplateError(`${w}: hasKey of a ${kindOf(a[0])}`);
      return Object.prototype.hasOwnProperty.call(a[0], str(a[1], w, 'hasKey'));
    },
    kindIs: (a, w) => str(a[0], w, 'kindIs') === kindOf(a[1]),
    kindOf: (a) => kindOf(a[0]),
    ternary: (a, w) => {
      if (typeof a[2] !== 'boolean') throw new TemplateError(`${w}: ternary needs a bool, got ${kindOf(a[2])}`);
      return a[2] ? a[0] : a[1];
    },
    printf: (a, w) => sprintf(str(a[0], w, 'printf'), a.slice(1), w),
    print: (a) => a.map((x) => (x === undefined || x === null ? '<nil>' : strval(x))).join(''),
  };
}

function str(v: Value, where: string, fn: string): string {
  if (typeof v !== 'string') throw new TemplateError(`${where}: ${fn}: wrong type for value; expected string; got ${kindOf(v)}`);
  return v;
}

function int(v: Value, where: string, fn: string): bigint {
  if (typeof v !== 'bigint') throw new TemplateError(`${where}: ${fn}: wrong type for value; expected int; got ${kindOf(v)}`);
  return v;
}

function indent(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return pad + s.split('\n').join(`\n${pad}`);
}

/** Go's eq/lt rules: both operands of the same basic kind, else an error. */
function compare(x: Value, y: Value, where: string, ordered = false): number {
  const kx = kindOf(x);
  const ky = kindOf(y);
  if (!ordered && (kx === 'invalid' || ky === 'invalid')) return kx === ky ? 0 : 1;
  if (kx !== ky) throw new TemplateError(`${where}: incompatible types for comparison (${kx}, ${ky})`);
  if (kx === 'string' || kx === 'int' || kx === 'float64') return (x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0;
  if (kx === 'bool' && !ordered) return x === y ? 0 : 1;
  throw new TemplateError(`${where}: invalid type for comparison (${kx})`);
}

function sprintf(format: string, args: Value[], where: string): string {
  let i = 0;
  return format.replace(/%([%sdvq])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) throw new TemplateError(`${where}: printf: missing argument for %${verb}`);
    const v = args[i++];
    if (verb === 'd') return int(v, where, 'printf %d').toString();
    if (verb === 's') return str(v, where, 'printf %s');
    if (verb === 'q') return JSON.stringify(str(v, where, 'printf %q'));
    return strval(v);
  });
}

/** A chart's templates: parse every file, collect `define`s, render one file. */
export class Chart {
  private readonly parsed = new Map<string, Parsed>();
  private readonly renderer: Renderer;

  /** `files`: template file name → source (`_helpers.tpl`, `deployment.yaml`, `NOTES.txt`, …). */
  constructor(files: Record<string, string>) {
    const defines = new Map<string, Node[]>();
    for (const [name, src] of Object.entries(files)) {
      const p = parseTemplate(src, name);
      this.parsed.set(name, p);
      for (const [k, v] of p.defines) defines.set(k, v);
    }
    this.renderer = new Renderer(defines);
  }

  /** Render every file but partials (`_*`), as Helm does; returns file name → output. */
  render(ctx: HelmContext): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, p] of this.parsed) {
      if (name.split('/').pop()!.startsWith('_')) continue;
      const dot = { ...ctx, Template: { Name: name, BasePath: 'templates' } };
      out[name] = this.renderer.renderNodes(p.root, dot, [new Map([['$', dot]])]);
    }
    return out;
  }
}
