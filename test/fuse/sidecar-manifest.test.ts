/**
 * Static checks of deploy/kubernetes/sidecar-pod.yaml (no cluster runs here): the settings the FUSE
 * sidecar pattern cannot work without, and that the probe and the command agree on the ready file.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const MANIFEST = fileURLToPath(new URL('../../deploy/kubernetes/sidecar-pod.yaml', import.meta.url));

interface Container {
  name: string;
  image: string;
  args?: string[];
  restartPolicy?: string;
  securityContext?: { privileged?: boolean };
  volumeMounts: Array<{ name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }>;
  startupProbe?: { exec: { command: string[] } };
  readinessProbe?: { exec: { command: string[] } };
}

describe('deploy/kubernetes/sidecar-pod.yaml', () => {
  it('is a Pod with a privileged native hexz sidecar and a main container sharing /data with propagation', async () => {
    const pod = parse(await fs.readFile(MANIFEST, 'utf8'));
    expect(pod.kind).toBe('Pod');
    const volume = pod.spec.volumes.find((v: { name: string }) => v.name === 'data');
    expect(volume.emptyDir).toBeDefined();

    const sidecar: Container = pod.spec.initContainers.find((c: Container) => c.name === 'hexz');
    expect(sidecar.image).toBe('hexz:latest');
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.securityContext?.privileged).toBe(true);
    expect(sidecar.args?.slice(0, 3)).toEqual(['mount', 's3://bucket/ds/data.hxz', '/data']);
    const readyFile = sidecar.args![sidecar.args!.indexOf('--ready-file') + 1];
    expect(readyFile).toBe('/tmp/hexz-ready');
    expect(sidecar.startupProbe?.exec.command).toEqual(['test', '-e', readyFile]);
    expect(sidecar.readinessProbe?.exec.command).toEqual(['test', '-e', readyFile]);
    expect(sidecar.volumeMounts).toContainEqual(expect.objectContaining({ name: 'data', mountPath: '/data', mountPropagation: 'Bidirectional' }));

    const app: Container = pod.spec.containers[0];
    expect(app.volumeMounts).toContainEqual(expect.objectContaining({ name: 'data', mountPath: '/data', mountPropagation: 'HostToContainer', readOnly: true }));
    expect(app.securityContext?.privileged).not.toBe(true);
    // The app runs as another user, so the mount must allow other users in.
    expect(sidecar.args).toContain('--allow-other');
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(10);
  });
});
