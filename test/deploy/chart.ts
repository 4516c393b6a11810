/**
 * Loading and rendering helm/hexz the way `helm template` does (values merged over values.yaml,
 * validated against values.schema.json, every template rendered, YAML documents split and parsed),
 * with the renderer of ./helm-template.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { Chart, type HelmContext } from './helm-template.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CHART_DIR = path.join(REPO, 'helm/hexz');

export type Values = Record<string, any>;

/** A Kubernetes object as rendered. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
}

export function readChartFile(rel: string): string {
  return readFileSync(path.join(CHART_DIR, rel), 'utf8');
}

/** Every file under templates/, by name. */
export function templateFiles(): Record<string, string> {
  const dir = path.join(CHART_DIR, 'templates');
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]));
}

export const chartYaml = (): Values => parse(readChartFile('Chart.yaml'));
export const defaultValues = (): Values => parse(readChartFile('values.yaml'));
export const valuesSchema = (): Values => JSON.parse(readChartFile('values.schema.json'));

/**
 * Helm's coalescing of user values over the chart's: maps merge key by key, anything else replaces,
 * and a user's `null` deletes the key.
 */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = mergeValues(out[k], v);
    else out[k] = v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Values {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

let validator: ReturnType<Ajv['compile']> | undefined;

/** Validate values against values.schema.json (draft-07) as Helm does before rendering; the errors, or [] when valid. */
export function schemaErrors(values: Values): string[] {
  validator ??= new Ajv({ allErrors: true, strict: true, strictTypes: false }).compile(valuesSchema());
  if (validator(values)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

export interface Rendered {
  /** Output of each template file, NOTES.txt included. */
  files: Record<string, string>;
  /** Every non-empty YAML document of every .yaml template. */
  manifests: Manifest[];
  notes: string;
}

let chart: Chart | undefined;

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Validate against values.schema.json first (default); off = `helm template --skip-schema-validation`. */
  validate?: boolean;
}

/** `helm template RELEASE helm/hexz -f …`: merge, validate (throws on schema errors), render, parse. */
export function renderChart(overrides: Values = {}, opts: RenderOptions = {}): Rendered {
  const { release = 'hexz-test', namespace = 'data', validate = true } = opts;
  const values = mergeValues(defaultValues(), overrides);
  const errors = validate ? schemaErrors(values) : [];
  if (errors.length) throw new Error(`values do not match values.schema.json: ${errors.join('; ')}`);
  const meta = chartYaml();
  const ctx: HelmContext = {
    Values: values,
    Release: { Name: release, Namespace: namespace, Service: 'Helm', IsInstall: true, IsUpgrade: false },
    Chart: { Name: meta.name, Version: meta.version, AppVersion: String(meta.appVersion) },
  };
  chart ??= new Chart(templateFiles());
  const files = chart.render(ctx);
  const manifests: Manifest[] = [];
  for (const [name, text] of Object.entries(files)) {
    if (!name.endsWith('.yaml')) continue;
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) throw new Error(`${name} does not render to valid YAML: ${doc.errors[0].message}\n${text}`);
      const obj = doc.toJS();
      if (obj !== null && obj !== undefined) manifests.push(obj as Manifest);
    }
  }
  return { files, manifests, notes: files['NOTES.txt'] ?? '' };
}

/** The one manifest of a kind (and name, if given); throws when absent. */
export function find(r: Rendered, kind: string, name?: string): Manifest {
  const m = r.manifests.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!m) throw new Error(`no ${kind}${name ? ` ${name}` : ''} rendered (have: ${r.manifests.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')})`);
  return m;
}
