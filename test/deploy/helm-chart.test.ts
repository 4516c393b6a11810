/**
 * Static checks of the Helm chart in helm/hexz (no `helm` and no cluster here): the templates render
 * to valid YAML for every combination of values that matters, every `.Values` path they use exists
 * in values.yaml and every value is used, documented and validated by values.schema.json, the
 * rendered objects reference each other consistently, the settings they pass are accepted by hexz
 * itself, the secret-installing init container produces key files hexz accepts, and the sidecar
 * example is the Pod of deploy/kubernetes/sidecar-pod.yaml.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, parseDocument, isMap, isScalar, type Pair, type YAMLMap } from 'yaml';
import { DEFAULT_PORT } from '@hexz/src/gateway/config.js';
import { loadServeConfig } from '@hexz/src/cli/serve-config.js';
import { createKeyResolver } from '@hexz/src/gateway/keys.js';
import { readTokenFiles } from '@hexz/src/gateway/server.js';
import { loadTrustedKeys } from '@hexz/src/crypto/signing-keys.js';
import { makeTempDir } from '../helpers/tmp.js';
import { CHART_DIR, REPO, chartYaml, defaultValues, find, mergeValues, readChartFile, renderChart, schemaErrors, templateFiles, valuesSchema, type Manifest, type Rendered, type Values } from './chart.js';

const KEY_A = 'a1'.repeat(32); // 64 hex digits
const KEY_B = Buffer.alloc(32, 7).toString('base64');
/** Public key lines as `hexz keygen --sign NAME` writes them (NAME.pub). */
const PUB_CI = `hexz-ed25519 ${Buffer.alloc(32, 1).toString('base64')} ci`;
const PUB_RELEASE = `hexz-ed25519 ${Buffer.alloc(32, 2).toString('base64')} release-team`;

/** Every feature on at once, with the chart creating its Secret. */
const FULL: Values = {
  config: { storage: 's3://datasets/prod/', corsOrigins: ['https://app.example.org'], cacheSize: '2G', logLevel: 'warn' },
  s3: { endpoint: 'http://minio.storage.svc:9000', region: 'eu-west-1', pathStyle: true, accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret/key+x' },
  auth: { enabled: true, tokens: ['token-one', 'token-two'] },
  encryption: { keys: { default: KEY_A, 'team-a/ds': KEY_B }, passphrases: { legacy: 'correct horse battery staple' } },
  ingress: { enabled: true, className: 'nginx', tls: [{ secretName: 'hexz-tls', hosts: ['hexz.example.org'] }] },
  autoscaling: { enabled: true, targetMemoryUtilizationPercentage: 80 },
  metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
  serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/hexz' } },
  podAnnotations: { team: 'data' },
  extraEnv: [{ name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' }],
  nodeSelector: { 'kubernetes.io/arch': 'amd64' },
  imagePullSecrets: [{ name: 'regcred' }],
  trustedKeys: { configMap: 'hexz-trusted-keys' },
};

const readExample = (name: string): Values => parse(readChartFile(`examples/${name}`));

/** Value sets rendered by the generic checks. */
const SCENARIOS: Record<string, Values> = {
  defaults: {},
  full: FULL,
  'existing secret': { config: { storage: 's3://datasets/' }, existingSecret: 'hexz-credentials', auth: { enabled: true }, metrics: { serviceMonitor: { enabled: true } } },
  'local claim': { archivesVolume: { existingClaim: 'archives' }, replicaCount: 1, podDisruptionBudget: { enabled: true } },
  'only tokens': { auth: { enabled: true, tokens: ['t'] }, preStopSleepSeconds: 0 },
  'pdb maxUnavailable': { podDisruptionBudget: { minAvailable: null, maxUnavailable: '50%' } },
  'sidecar example values': readExample('sidecar-values.yaml'),
  'sidecar example with everything': { sidecarExample: { enabled: true, keySecret: { name: 'dataset-key', key: 'key' } }, s3: FULL.s3, trustedKeys: { keys: { 'ci.pub': PUB_CI } } },
  'trusted keys from values': { trustedKeys: { keys: { 'ci.pub': `${PUB_CI}\n`, 'release.pub': `# the release team\n${PUB_RELEASE}\n${PUB_CI}\n` } } },
  'trusted keys from a Secret': { trustedKeys: { secret: 'publishers' } },
};

const rendered: Record<string, Rendered> = {};
beforeAll(() => {
  for (const [name, values] of Object.entries(SCENARIOS)) rendered[name] = renderChart(values);
});

function containers(pod: { containers?: any[]; initContainers?: any[] }): any[] {
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
}

/** Every `a.b.c` path of a values tree (leaves and empty collections), stopping at the given prefixes. */
function valuePaths(v: unknown, prefix = '', stopAt: string[] = []): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v as object).length === 0 || stopAt.includes(prefix)) return prefix ? [prefix] : [];
  return Object.entries(v as Values).flatMap(([k, x]) => valuePaths(x, prefix ? `${prefix}.${k}` : k, stopAt));
}

/** Values that are Kubernetes objects handed through as they are (their inner keys are Kubernetes', not ours). */
const PASSTHROUGH = ['podSecurityContext', 'securityContext', 'resources', 'probes.startup', 'probes.liveness', 'probes.readiness', 'ingress.hosts', 'sidecarExample.resources', 'sidecarExample.app.command'];

/** `.Values.x.y` paths the templates use, including through `$v := .Values.x` variables. */
function referencedValuePaths(): Set<string> {
  const out = new Set<string>();
  for (const src of Object.values(templateFiles())) {
    for (const m of src.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) out.add(m[1].slice(1));
    for (const d of src.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)\s*:=\s*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}/g)) {
      for (const m of src.matchAll(new RegExp(`\\$${d[1]}((?:\\.[A-Za-z_][A-Za-z0-9_]*)+)`, 'g'))) out.add(`${d[2].slice(1)}${m[1]}`);
    }
  }
  return out;
}

function hasPath(values: Values, p: string): boolean {
  let cur: unknown = values;
  for (const k of p.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, k)) return false;
    cur = (cur as Values)[k];
  }
  return true;
}

describe('Chart.yaml', () => {
  it('is a v2 chart whose appVersion is the package version', () => {
    const meta = chartYaml();
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    expect(meta.apiVersion).toBe('v2');
    expect(meta.name).toBe('hexz');
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(String(meta.appVersion)).toBe(pkg.version);
  });
});

describe('templates', () => {
  it.each(Object.keys(SCENARIOS))('render to valid Kubernetes YAML: %s', (name) => {
    const r = rendered[name];
    expect(r.manifests.length).toBeGreaterThan(0);
    for (const m of r.manifests) {
      expect(m.apiVersion, `${m.kind} apiVersion`).toMatch(/^[a-z0-9.]*\/?v\d/);
      expect(m.kind).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(m.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(m.metadata.name.length).toBeLessThanOrEqual(63);
      expect(m.metadata.labels?.['app.kubernetes.io/instance']).toBe('hexz-test');
      expect(m.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
    }
    // No two objects of a kind share a name.
    const ids = r.manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
    expect(r.notes.trim().length).toBeGreaterThan(0);
  });

  it('render every kind the issue asks for when the features are on', () => {
    const kinds = rendered.full.manifests.map((m) => m.kind).sort();
    expect(kinds).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    expect(rendered.defaults.manifests.map((m) => m.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  });

  it('use only .Values paths that exist in values.yaml', () => {
    const values = defaultValues();
    const refs = [...referencedValuePaths()];
    expect(refs.length).toBeGreaterThan(50);
    expect(refs.filter((p) => !hasPath(values, p))).toEqual([]);
  });

  it('use every value of values.yaml (no dead settings)', () => {
    const refs = [...referencedValuePaths()];
    const unused = valuePaths(defaultValues(), '', PASSTHROUGH).filter((p) => !refs.some((r) => r === p || p.startsWith(`${r}.`) || r.startsWith(`${p}.`)));
    expect(unused).toEqual([]);
  });

  it('fail with a clear message on combinations the schema would also refuse (helm --skip-schema-validation)', () => {
    const bad: Array<[Values, RegExp]> = [
      [{ auth: { enabled: true } }, /auth.enabled needs auth.tokens/],
      [{ s3: { accessKeyId: 'x' } }, /s3.accessKeyId needs s3.secretAccessKey/],
      [{ podDisruptionBudget: { maxUnavailable: 1 } }, /not both/],
      [{ autoscaling: { enabled: true, targetCPUUtilizationPercentage: null } }, /needs targetCPUUtilizationPercentage/],
      [{ config: { storage: 's3://b/' }, archivesVolume: { existingClaim: 'pvc' } }, /only used when config.storage is a directory/],
      [{ trustedKeys: { configMap: 'a', secret: 'b' } }, /trustedKeys: give keys, configMap or secret, not several/],
      [{ trustedKeys: { keys: { 'ci.pub': PUB_CI }, configMap: 'a' } }, /not several/],
    ];
    for (const [values, message] of bad) {
      expect(() => renderChart(values, { validate: false })).toThrow(message);
      expect(schemaErrors(mergeValues(defaultValues(), values)).length, JSON.stringify(values)).toBeGreaterThan(0);
    }
  });
});

describe('values.yaml and values.schema.json', () => {
  it('values.yaml and the example values validate against the schema', () => {
    expect(schemaErrors(defaultValues())).toEqual([]);
    for (const f of ['sidecar-values.yaml']) expect(schemaErrors(mergeValues(defaultValues(), readExample(f))), f).toEqual([]);
    for (const [name, v] of Object.entries(SCENARIOS)) expect(schemaErrors(mergeValues(defaultValues(), v)), name).toEqual([]);
  });

  it.each<[string, Values]>([
    ['a negative replica count', { replicaCount: -1 }],
    ['a replica count as a string', { replicaCount: '2' }],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }],
    ['a typo at the top level', { replicas: 3 }],
    ['a typo inside config', { config: { cachesize: '1G' } }],
    ['a cache size that is not a size', { config: { cacheSize: 'lots' } }],
    ['a cache size as a number (Helm would print 2.68435456e+08)', { config: { cacheSize: 268435456 } }],
    ['a port out of range', { config: { port: 70000 } }],
    ['an unknown log level', { config: { logLevel: 'verbose' } }],
    ['HTTP storage (not listable)', { config: { storage: 'https://example.org/archives/' } }],
    ['a relative storage directory', { config: { storage: 'archives' } }],
    ['a CORS origin with a path', { config: { corsOrigins: ['https://app.example.org/x'] } }],
    ['an S3 endpoint without a scheme', { s3: { endpoint: 'minio:9000' } }],
    ['pathStyle as a string', { s3: { pathStyle: 'yes' } }],
    ['an access key without its secret', { s3: { accessKeyId: 'AKIA' } }],
    ['auth without tokens or existingSecret', { auth: { enabled: true } }],
    ['a token with white space', { auth: { tokens: ['a b'] } }],
    ['a key that is not 32 bytes', { encryption: { keys: { default: 'abcd' } } }],
    ['a key name escaping the key directory', { encryption: { keys: { '../etc': KEY_A } } }],
    ['a key name with "__" (the chart writes "/" as "__")', { encryption: { keys: { a__b: KEY_A } } }],
    ['a multi-line passphrase', { encryption: { passphrases: { default: 'a\nb' } } }],
    ['an unknown service type', { service: { type: 'Headless' } }],
    ['both PDB fields', { podDisruptionBudget: { minAvailable: 1, maxUnavailable: 1 } }],
    ['autoscaling without a target', { autoscaling: { enabled: true, targetCPUUtilizationPercentage: null } }],
    ['an ingress path not starting with /', { ingress: { hosts: [{ host: 'h', paths: [{ path: 'x', pathType: 'Prefix' }] }] } }],
    ['a sidecar mount path that is relative', { sidecarExample: { mountPath: 'data' } }],
    ['a sidecar app running as root', { sidecarExample: { app: { runAsUser: 0 } } }],
    ['a scrape interval without a unit', { metrics: { serviceMonitor: { interval: '30' } } }],
  ])('rejects %s', (_name, values) => {
    expect(schemaErrors(mergeValues(defaultValues(), values)).length).toBeGreaterThan(0);
  });

  it('uses only regular expressions that Helm (Go, RE2) can compile: no lookaround, no backreferences', () => {
    const patterns: string[] = [];
    JSON.stringify(valuesSchema(), (k, v) => {
      if (k === 'pattern' && typeof v === 'string') patterns.push(v);
      return v;
    });
    expect(patterns.length).toBeGreaterThan(10);
    for (const p of patterns) expect(p, p).not.toMatch(/\(\?[=!<]|\\[1-9]/);
  });

  it('describes exactly the keys of values.yaml', () => {
    const schema = valuesSchema();
    const schemaPaths = (s: Values, prefix = ''): string[] =>
      s.properties && s.additionalProperties === false && !PASSTHROUGH.includes(prefix.slice(0, -1))
        ? Object.entries(s.properties as Record<string, Values>).flatMap(([k, sub]) => [`${prefix}${k}`, ...schemaPaths(sub, `${prefix}${k}.`)])
        : [];
    const values = defaultValues();
    const missing = schemaPaths(schema).filter((p) => p !== 'global' && !hasPath(values, p));
    expect(missing).toEqual([]);
  });

  it('documents every value with a comment in values.yaml and a row in the chart README', () => {
    const doc = parseDocument(readChartFile('values.yaml'));
    const undocumented: string[] = [];
    const walk = (map: YAMLMap, prefix: string) => {
      for (const pair of map.items as Pair[]) {
        const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
        const p = prefix ? `${prefix}.${key}` : key;
        const comment = (pair.key as { commentBefore?: string }).commentBefore ?? (pair as { commentBefore?: string }).commentBefore;
        // The first key of a map carries its comment on the map node.
        const first = map.items[0] === pair ? (map as { commentBefore?: string }).commentBefore : undefined;
        // A section (a map of documented keys) needs no comment of its own.
        const section = isMap(pair.value) && pair.value.items.length > 0 && !PASSTHROUGH.includes(p);
        if (!comment && !first && !section && !PASSTHROUGH.some((x) => prefix === x || prefix.startsWith(`${x}.`))) undocumented.push(p);
        if (isMap(pair.value) && !PASSTHROUGH.includes(p)) walk(pair.value, p);
      }
    };
    walk(doc.contents as YAMLMap, '');
    expect(undocumented).toEqual([]);

    const readme = readChartFile('README.md');
    const notInReadme = valuePaths(defaultValues(), '', PASSTHROUGH).filter((p) => !readme.includes(`\`${p}\``) && !PASSTHROUGH.some((x) => p === x));
    const passthroughNotInReadme = PASSTHROUGH.filter((p) => !readme.includes(`\`${p}\``) && !readme.includes(`\`${p.split('.')[0]}\``));
    expect(notInReadme).toEqual([]);
    expect(passthroughNotInReadme).toEqual([]);
  });
});

describe('the gateway objects', () => {
  const deployment = (r: Rendered) => find(r, 'Deployment');
  const podSpec = (r: Rendered) => deployment(r).spec.template.spec;
  const gateway = (r: Rendered) => podSpec(r).containers.find((c: any) => c.name === 'gateway');

  it('run unprivileged: non-root (the image user), read-only root filesystem, no capabilities, no privilege escalation', () => {
    const dockerUser = /^USER\s+(\d+)(?::(\d+))?\s*$/m.exec(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'))!;
    for (const name of ['defaults', 'full', 'existing secret']) {
      const spec = podSpec(rendered[name]);
      expect(spec.securityContext.runAsNonRoot).toBe(true);
      expect(String(spec.securityContext.runAsUser)).toBe(dockerUser[1]);
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const c of containers(spec)) {
        expect(c.securityContext, c.name).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
        expect(c.securityContext.privileged).toBeUndefined();
      }
    }
  });

  it('probe /healthz (startup, liveness) on the health port and /readyz (readiness) on the port the gateway listens on', () => {
    for (const name of ['defaults', 'full']) {
      const r = rendered[name];
      const c = gateway(r);
      const cm = find(r, 'ConfigMap');
      const port = c.ports.find((p: any) => p.name === 'http');
      expect(String(port.containerPort)).toBe(cm.data.HEXZ_PORT);
      // Liveness on a port of its own: on the gateway's port it would queue behind content under load.
      const health = c.ports.find((p: any) => p.name === 'health');
      expect(String(health.containerPort)).toBe(cm.data.HEXZ_HEALTH_PORT);
      expect(health.containerPort).not.toBe(port.containerPort);
      expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      // The gateway gives its storage check 2 s; the probe must wait longer than that.
      expect(c.readinessProbe.timeoutSeconds).toBeGreaterThan(2);
      expect(c.args).toEqual(['serve']);
      expect(cm.data.HEXZ_HOST).toBe('0.0.0.0');
    }
    expect(find(rendered.defaults, 'ConfigMap').data.HEXZ_PORT).toBe(String(DEFAULT_PORT));
  });

  it('select their own pods: Deployment, Service, PDB and ServiceMonitor agree; the sidecar example is not selected', () => {
    for (const name of ['defaults', 'full']) {
      const r = rendered[name];
      const d = deployment(r);
      const podLabels = d.spec.template.metadata.labels;
      const selector = d.spec.selector.matchLabels;
      expect(podLabels).toMatchObject(selector);
      expect(find(r, 'Service').spec.selector).toEqual(selector);
      expect(find(r, 'PodDisruptionBudget').spec.selector.matchLabels).toEqual(selector);
      expect(find(r, 'Service').spec.ports[0].targetPort).toBe('http');
    }
    const full = rendered.full;
    expect(find(full, 'Service').metadata.labels).toMatchObject(find(full, 'ServiceMonitor').spec.selector.matchLabels);
    expect(find(full, 'ServiceMonitor').spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    const hpa = find(full, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment(full).metadata.name });
    expect(deployment(full).spec.replicas).toBeUndefined(); // the autoscaler owns it
    expect(hpa.spec.metrics.map((m: any) => m.resource.name)).toEqual(['cpu', 'memory']);
    const ingress = find(full, 'Ingress');
    expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({ name: find(full, 'Service').metadata.name, port: { name: 'http' } });
    expect(ingress.spec.ingressClassName).toBe('nginx');

    const sidecarPod = find(rendered['sidecar example with everything'], 'Pod');
    const gatewaySelector = deployment(rendered['sidecar example with everything']).spec.selector.matchLabels;
    expect(Object.entries(gatewaySelector).every(([k, v]) => sidecarPod.metadata.labels?.[k] === v)).toBe(false);
  });

  it('no PodDisruptionBudget for a single replica (it would block node drains)', () => {
    expect(rendered['local claim'].manifests.some((m) => m.kind === 'PodDisruptionBudget')).toBe(false);
    expect(find(rendered['pdb maxUnavailable'], 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: '50%' });
  });

  it('reference only volumes, ConfigMaps, Secrets and ServiceAccounts that exist', () => {
    for (const [name, r] of Object.entries(rendered)) {
      if (!r.manifests.some((m) => m.kind === 'Deployment')) continue;
      const spec = podSpec(r);
      const volumes = new Set(spec.volumes.map((v: any) => v.name));
      const secrets = new Set([...r.manifests.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name), ...(SCENARIOS[name].existingSecret ? [SCENARIOS[name].existingSecret] : [])]);
      for (const c of containers(spec)) {
        for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${name}: ${c.name} mounts ${m.name}`).toBe(true);
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) expect(secrets.has(e.valueFrom.secretKeyRef.name), `${name}: ${e.name}`).toBe(true);
        for (const e of c.envFrom ?? []) expect(e.configMapRef.name).toBe(`hexz-test`);
      }
      for (const v of spec.volumes) if (v.secret) expect(secrets.has(v.secret.secretName) || v.secret.secretName === SCENARIOS[name].trustedKeys?.secret, `${name}: volume ${v.name}`).toBe(true);
      const configMaps = new Set([...r.manifests.filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name), ...(SCENARIOS[name].trustedKeys?.configMap ? [SCENARIOS[name].trustedKeys.configMap] : [])]);
      for (const v of spec.volumes) if (v.configMap) expect(configMaps.has(v.configMap.name), `${name}: volume ${v.name}`).toBe(true);
      expect(find(r, 'ServiceAccount').metadata.name).toBe(spec.serviceAccountName);
      // Writable places on a read-only root filesystem: /tmp, and only volumes.
      expect(gateway(r).volumeMounts.map((m: any) => m.mountPath)).toContain('/tmp');
    }
  });

  it('mount the archives volume at a local storage directory, and nothing for S3', () => {
    const local = podSpec(rendered['local claim']);
    expect(local.volumes.find((v: any) => v.name === 'archives')).toEqual({ name: 'archives', persistentVolumeClaim: { claimName: 'archives', readOnly: true } });
    expect(local.containers[0].volumeMounts).toContainEqual({ name: 'archives', mountPath: '/archives', readOnly: true });
    expect(podSpec(rendered.defaults).volumes.find((v: any) => v.name === 'archives')).toEqual({ name: 'archives', emptyDir: {} });
    expect(podSpec(rendered.full).volumes.some((v: any) => v.name === 'archives')).toBe(false);
  });

  it('roll the pods when the settings or the Secret change', () => {
    const a = deployment(renderChart({ auth: { enabled: true, tokens: ['a'] } })).spec.template.metadata.annotations;
    const b = deployment(renderChart({ auth: { enabled: true, tokens: ['b'] } })).spec.template.metadata.annotations;
    const c = deployment(renderChart({ auth: { enabled: true, tokens: ['a'] }, config: { cacheSize: '1G' } })).spec.template.metadata.annotations;
    expect(a['checksum/secret']).not.toBe(b['checksum/secret']);
    expect(a['checksum/config']).toBe(b['checksum/config']);
    expect(a['checksum/config']).not.toBe(c['checksum/config']);
  });

  it('default the image tag to the appVersion', () => {
    expect(gateway(rendered.defaults).image).toBe(`hexz:${chartYaml().appVersion}`);
    expect(gateway(renderChart({ image: { repository: 'registry.example.org/hexz', tag: '1.2.3' } })).image).toBe('registry.example.org/hexz:1.2.3');
  });
});

describe('settings reach hexz as it reads them', () => {
  // `hexz serve` reads its own settings (src/cli/serve-config.ts) and the storage settings every command shares (src/cli/config.ts).
  const configSource = ['src/cli/serve-config.ts', 'src/cli/config.ts'].map((f) => readFileSync(path.join(REPO, f), 'utf8')).join('\n');
  const readByHexz = new Set([...configSource.matchAll(/env\.(HEXZ_[A-Z0-9_]+)/g)].map((m) => m[1]));
  /** Read by hexz but deliberately not set by the chart, and why. */
  const NOT_SET: Record<string, string> = {
    HEXZ_CONFIG: 'every setting comes as a variable; no JSON file needed',
    HEXZ_KEY_FILE: 'keys come through the key directory (default.key covers every archive)',
    HEXZ_PASSPHRASE_FILE: 'passphrases come through the key directory (default.passphrase)',
    HEXZ_PASSPHRASE: 'a passphrase in a variable would show in the pod spec',
    HEXZ_HTTP_HEADERS: 'HTTP(S) archives only; the gateway reads a directory or S3 (extraEnv can set it)',
    HEXZ_HTTP_TIMEOUT: 'HTTP(S) archives only (extraEnv)',
    HEXZ_HTTP_RETRIES: 'HTTP(S) archives only (extraEnv)',
    HEXZ_PROGRESS: 'progress bars are drawn only on a terminal; a pod has none',
    HEXZ_BASE_DIR: 'the gateway resolves bases of thin archives inside its storage root',
    HEXZ_BASE_HOSTS: 'the gateway never follows base hints off its storage root (it confines bases with its own resolver)',
    HEXZ_SIGN_KEY: 'the gateway never writes (or signs) archives',
    HEXZ_WORKERS: "one gateway thread per CPU the pod may use: Node 24's availableParallelism follows the container's CPU limit (cgroup quota); extraEnv can set it",
    HEXZ_STORAGE_TIMEOUT: 'the default (5 s without a byte) suits S3 and local disks; extraEnv can set it',
    HEXZ_DECODE_THREADS: 'one per core by default, which follows the pod CPU; extraEnv can set it',
    HEXZ_HOME: 'workspaces (hexz checkout) only: the gateway has none',
    HEXZ_EXTENT_MIN: 'workspaces (hexz checkout) only: the gateway has none',
    HEXZ_JOURNAL_COMPACT: 'workspaces (hexz checkout) only: the gateway has none',
  };

  it('sets every variable of the gateway configuration, and only those', () => {
    const r = rendered.full;
    const env = new Set([...Object.keys(find(r, 'ConfigMap').data), ...find(r, 'Deployment').spec.template.spec.containers[0].env.map((e: any) => e.name)]);
    const hexzVars = [...env].filter((v) => v.startsWith('HEXZ_'));
    expect(hexzVars.filter((v) => !readByHexz.has(v))).toEqual([]);
    expect([...readByHexz].filter((v) => !env.has(v) && !(v in NOT_SET))).toEqual([]);
  });

  it.each<[string, Values]>([
    ['defaults', {}],
    ['everything', FULL],
    ['large numbers (Helm prints floats ≥ 1e6 in exponent form)', { config: { etagCacheEntries: 5_000_000, requestTimeoutMs: 1_200_000, idleTimeoutMs: 3_600_000, archiveTtlMs: 0, cacheSize: '1.5G' } }],
    ['path style off', { s3: { pathStyle: false } }],
  ])('the ConfigMap is a valid hexz serve configuration: %s', async (_name, values) => {
    const data = find(renderChart(values), 'ConfigMap').data as Record<string, string>;
    for (const v of Object.values(data)) expect(typeof v).toBe('string');
    const merged = mergeValues(defaultValues(), values);
    const cfg = await loadServeConfig({}, data);
    expect(cfg.storage).toBe(merged.config.storage);
    expect(cfg.port).toBe(merged.config.port);
    expect(cfg.etagCacheEntries).toBe(merged.config.etagCacheEntries);
    expect(cfg.requestTimeoutMs).toBe(merged.config.requestTimeoutMs);
    expect(cfg.archiveTtlMs).toBe(merged.config.archiveTtlMs);
    expect(cfg.corsOrigins).toEqual(merged.config.corsOrigins);
    expect(cfg.logLevel).toBe(merged.config.logLevel);
    expect(cfg.storageOptions.s3?.endpoint).toBe(merged.s3.endpoint || undefined);
    if (typeof merged.s3.pathStyle === 'boolean') expect(cfg.storageOptions.s3?.forcePathStyle).toBe(merged.s3.pathStyle);
  });
});

describe('keys and tokens: Secret → init container → files hexz accepts', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('hexz-helm-secrets-');
  });
  afterAll(() => tmp.cleanup());

  /** Lay out a Secret's data the way the kubelet does: files in a timestamped dir, `..data` → it, symlinks per key. */
  async function secretVolume(dir: string, data: Record<string, string>, mode: number): Promise<void> {
    const ts = path.join(dir, '..2026_01_01_00_00_00.000000001');
    await fs.mkdir(ts, { recursive: true });
    for (const [k, b64] of Object.entries(data)) {
      await fs.writeFile(path.join(ts, k), Buffer.from(b64, 'base64'));
      await fs.chmod(path.join(ts, k), mode);
      await fs.symlink(path.join('..data', k), path.join(dir, k));
    }
    await fs.symlink(path.basename(ts), path.join(dir, '..data'));
  }

  function initCommand(r: Rendered): string[] {
    const init = find(r, 'Deployment').spec.template.spec.initContainers[0];
    expect(init.name).toBe('install-secrets');
    return init.command;
  }

  it('installs every key, passphrase and the token file with mode 0400; hexz loads them and resolves names', async () => {
    const r = rendered.full;
    const secret = find(r, 'Secret');
    const src = path.join(tmp.dir, 'secret');
    const dest = path.join(tmp.dir, 'run');
    await fs.mkdir(dest);
    await secretVolume(src, secret.data, 0o444);
    const [sh, flag, script, arg0, volume, target, auth] = initCommand(r);
    expect([sh, flag, volume, target, auth]).toEqual(['sh', '-c', '/etc/hexz/secret', '/run/hexz', 'auth']);
    const run = spawnSync(sh, [flag, script, arg0, src, dest, auth], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);

    const files = (await fs.readdir(dest, { recursive: true })).sort();
    expect(files).toEqual(['auth-tokens', 'keys', 'keys/default.key', 'keys/legacy.passphrase', 'keys/team-a', 'keys/team-a/ds.key']);
    for (const f of ['auth-tokens', 'keys/default.key', 'keys/team-a/ds.key', 'keys/legacy.passphrase']) expect(((await fs.stat(path.join(dest, f))).mode & 0o777).toString(8), f).toBe('400');

    // The gateway's env points at these files.
    const env = Object.fromEntries(find(r, 'Deployment').spec.template.spec.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
    expect(env.HEXZ_KEY_DIR).toBe('/run/hexz/keys');
    expect(env.HEXZ_AUTH_TOKEN_FILE).toBe('/run/hexz/auth-tokens');

    const resolve = await createKeyResolver({ keyDir: path.join(dest, 'keys') });
    expect(await resolve('team-a/ds/v2')).toEqual({ kind: 'key', key: Uint8Array.from(Buffer.from(KEY_B, 'base64')) });
    expect(await resolve('other')).toEqual({ kind: 'key', key: Uint8Array.from(Buffer.from(KEY_A, 'hex')) });
    expect(await resolve('legacy/x')).toEqual({ kind: 'passphrase', passphrase: 'correct horse battery staple' });
    expect(await readTokenFiles([path.join(dest, 'auth-tokens')])).toEqual(['token-one', 'token-two']);
  });

  it('fails the pod start, with a message, when auth is on and the existing Secret has no tokens', async () => {
    const src = path.join(tmp.dir, 'existing');
    const dest = path.join(tmp.dir, 'run2');
    await fs.mkdir(dest);
    await secretVolume(src, { AWS_ACCESS_KEY_ID: Buffer.from('x').toString('base64') }, 0o444);
    const [sh, flag, script, arg0, , , auth] = initCommand(rendered['existing secret']);
    const run = spawnSync(sh, [flag, script, arg0, src, dest, auth], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/no auth-tokens key/);
    expect(await fs.readdir(path.join(dest, 'keys'))).toEqual([]);
  });

  it('with an existing Secret: credentials are optional references, the key directory is always set', () => {
    const r = rendered['existing secret'];
    expect(r.manifests.some((m) => m.kind === 'Secret')).toBe(false);
    const env = find(r, 'Deployment').spec.template.spec.containers[0].env;
    expect(env.find((e: any) => e.name === 'AWS_ACCESS_KEY_ID').valueFrom.secretKeyRef).toEqual({ name: 'hexz-credentials', key: 'AWS_ACCESS_KEY_ID', optional: true });
    expect(env.map((e: any) => e.name)).toEqual(expect.arrayContaining(['HEXZ_KEY_DIR', 'HEXZ_AUTH_TOKEN_FILE']));
    expect(find(r, 'ServiceMonitor').spec.endpoints[0].authorization.credentials).toEqual({ name: 'hexz-credentials', key: 'metrics-token' });
  });

  it('without secrets there is no init container, no Secret and no secret env', () => {
    const spec = find(rendered.defaults, 'Deployment').spec.template.spec;
    expect(spec.initContainers).toBeUndefined();
    expect(spec.containers[0].env).toBeUndefined();
  });
});

describe('trusted keys: ConfigMap or Secret → a directory of *.pub files hexz reads', () => {
  const deployment = (r: Rendered) => find(r, 'Deployment');
  const podSpec = (r: Rendered) => deployment(r).spec.template.spec;
  const gateway = (r: Rendered) => podSpec(r).containers.find((c: any) => c.name === 'gateway');
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('hexz-helm-trust-');
  });
  afterAll(() => tmp.cleanup());

  it('the chart keeps trustedKeys.keys in a ConfigMap, mounted read-only where HEXZ_TRUSTED_KEYS points; hexz loads every key', async () => {
    const r = rendered['trusted keys from values'];
    const cm = find(r, 'ConfigMap', 'hexz-test-trusted-keys');
    expect(Object.keys(cm.data).sort()).toEqual(['ci.pub', 'release.pub']);
    const spec = podSpec(r);
    expect(spec.volumes).toContainEqual({ name: 'trusted-keys', configMap: { name: 'hexz-test-trusted-keys' } });
    expect(gateway(r).volumeMounts).toContainEqual({ name: 'trusted-keys', mountPath: '/etc/hexz/trusted-keys', readOnly: true });
    const env = Object.fromEntries(gateway(r).env.map((e: any) => [e.name, e.value]));
    expect(env.HEXZ_TRUSTED_KEYS).toBe('/etc/hexz/trusted-keys');
    // As the kubelet lays a ConfigMap volume out: files behind ..data symlinks.
    const dir = path.join(tmp.dir, 'trusted-keys');
    const ts = path.join(dir, '..2026_01_01_00_00_00.000000001');
    await fs.mkdir(ts, { recursive: true });
    for (const [k, v] of Object.entries(cm.data as Record<string, string>)) {
      await fs.writeFile(path.join(ts, k), v);
      await fs.symlink(path.join('..data', k), path.join(dir, k));
    }
    await fs.symlink(path.basename(ts), path.join(dir, '..data'));
    const keys = await loadTrustedKeys(dir);
    expect([...keys].map((k) => k.comment).sort()).toEqual(['ci', 'release-team']);
    const cfg = await loadServeConfig({}, { ...find(r, 'ConfigMap', 'hexz-test').data, HEXZ_TRUSTED_KEYS: env.HEXZ_TRUSTED_KEYS });
    expect(cfg.trustedKeys).toBe('/etc/hexz/trusted-keys');
  });

  it('an existing ConfigMap or Secret is mounted as it is; the chart creates nothing for it', () => {
    expect(podSpec(rendered.full).volumes).toContainEqual({ name: 'trusted-keys', configMap: { name: 'hexz-trusted-keys' } });
    const r = rendered['trusted keys from a Secret'];
    expect(podSpec(r).volumes).toContainEqual({ name: 'trusted-keys', secret: { secretName: 'publishers' } });
    expect(r.manifests.filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name)).toEqual(['hexz-test']);
    expect(podSpec(rendered.defaults).volumes.some((v: any) => v.name === 'trusted-keys')).toBe(false);
    expect(gateway(rendered.defaults).env?.some((e: any) => e.name === 'HEXZ_TRUSTED_KEYS') ?? false).toBe(false);
  });

  it('rolls the pods when trustedKeys.keys change', () => {
    const a = deployment(renderChart({ trustedKeys: { keys: { 'ci.pub': PUB_CI } } })).spec.template.metadata.annotations;
    const b = deployment(renderChart({ trustedKeys: { keys: { 'ci.pub': PUB_RELEASE } } })).spec.template.metadata.annotations;
    expect(a['checksum/trusted-keys']).toBeDefined();
    expect(a['checksum/trusted-keys']).not.toBe(b['checksum/trusted-keys']);
  });

  it('the schema refuses key names without .pub and values that are not public key lines', () => {
    expect(schemaErrors(mergeValues(defaultValues(), { trustedKeys: { keys: { ci: PUB_CI } } })).length).toBeGreaterThan(0);
    expect(schemaErrors(mergeValues(defaultValues(), { trustedKeys: { keys: { 'ci.pub': '-----BEGIN PUBLIC KEY-----' } } })).length).toBeGreaterThan(0);
  });
});

describe('the sidecar example', () => {
  const DEPLOY_POD = path.join(REPO, 'deploy/kubernetes/sidecar-pod.yaml');
  const pod = () => find(rendered['sidecar example values'], 'Pod');

  it('examples/sidecar-values.yaml renders exactly examples/sidecar-pod.yaml, and no gateway', () => {
    const r = renderChart(readExample('sidecar-values.yaml'), { release: 'data' });
    const golden = parseAllDocuments(readChartFile('examples/sidecar-pod.yaml'))
      .map((d) => d.toJS())
      .filter(Boolean);
    expect(golden).toHaveLength(1);
    expect(find(r, 'Pod')).toEqual(golden[0]);
    expect(r.manifests.map((m) => m.kind).sort()).toEqual(['Pod', 'ServiceAccount']);
  });

  it('is the Pod of deploy/kubernetes/sidecar-pod.yaml (the sidecar also states runAsUser: 0)', () => {
    const deployPod = parse(readFileSync(DEPLOY_POD, 'utf8')) as Manifest;
    const ours = pod();
    expect(ours.metadata.name).toBe(deployPod.metadata.name);
    const normalize = (p: Manifest) => {
      const spec = structuredClone(p.spec);
      for (const c of spec.initContainers) delete c.securityContext.runAsUser;
      return spec;
    };
    expect(normalize(ours)).toEqual(normalize(deployPod));
    // The image's default user is unprivileged (right for the gateway); the mount runs as root.
    expect(ours.spec.initContainers[0].securityContext.runAsUser).toBe(0);
    expect(deployPod.spec.initContainers[0].securityContext.runAsUser ?? 0).toBe(0);
  });

  it('passes the chart S3 settings, credentials and an archive key to the sidecar', () => {
    const r = rendered['sidecar example with everything'];
    const p = find(r, 'Pod');
    const hexz = p.spec.initContainers[0];
    const env = Object.fromEntries(hexz.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({ HEXZ_S3_ENDPOINT: FULL.s3.endpoint, HEXZ_S3_REGION: 'eu-west-1', HEXZ_S3_PATH_STYLE: '1', HEXZ_KEY_FILE: '/etc/hexz/key/archive.key' });
    expect(env.AWS_ACCESS_KEY_ID.secretKeyRef.name).toBe(find(r, 'Secret').metadata.name);
    const keyVolume = p.spec.volumes.find((v: any) => v.name === 'archive-key');
    expect(keyVolume.secret).toEqual({ secretName: 'dataset-key', defaultMode: 0o400, items: [{ key: 'key', path: 'archive.key' }] });
    expect(hexz.volumeMounts).toContainEqual({ name: 'archive-key', mountPath: '/etc/hexz/key', readOnly: true });
    expect(hexz.args).toEqual(['mount', 's3://bucket/ds/data.hxz', '/data', '--ready-file', '/tmp/hexz-ready', '--allow-other']);
    // Trusted keys: the mount refuses an archive not signed by one of them.
    expect(env.HEXZ_TRUSTED_KEYS).toBe('/etc/hexz/trusted-keys');
    expect(hexz.volumeMounts).toContainEqual({ name: 'trusted-keys', mountPath: '/etc/hexz/trusted-keys', readOnly: true });
    expect(p.spec.volumes).toContainEqual({ name: 'trusted-keys', configMap: { name: 'hexz-test-trusted-keys' } });
    expect(find(r, 'ConfigMap', 'hexz-test-trusted-keys').data).toEqual({ 'ci.pub': PUB_CI });
  });
});

describe('chart files', () => {
  it('has a README, the example files and no stray files in templates/', async () => {
    for (const f of ['README.md', 'Chart.yaml', 'values.yaml', 'values.schema.json', 'examples/sidecar-values.yaml', 'examples/sidecar-pod.yaml']) await fs.access(path.join(CHART_DIR, f));
    for (const f of Object.keys(templateFiles())) expect(f).toMatch(/^(_helpers\.tpl|NOTES\.txt|[a-z-]+\.yaml)$/);
  });
});
