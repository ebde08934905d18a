import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJobManifest } from '../../core/spec/parse.ts';
import { checkPodSecurity, type PodSecurityLevel } from '../../core/spec/pod-security.ts';
import type { JobSpec } from '../../core/spec/types.ts';

/** A job whose one pod template is `pod` (containers default to one compliant-at-restricted container). */
function job(
  pod: Record<string, unknown>,
  container: Record<string, unknown> = {},
  metadata?: Record<string, unknown>,
): JobSpec {
  const result = parseJobManifest({
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    metadata: { name: 'job' },
    spec: {
      replicaSpecs: [
        {
          name: 'pods',
          replicas: 1,
          template: {
            ...(metadata ? { metadata } : {}),
            spec: {
              securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
              containers: [
                {
                  name: 'pytorch',
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                  ...container,
                },
              ],
              ...pod,
            },
          },
        },
      ],
    },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
}

const P = 'spec.replicaSpecs[0].template';
const C = `${P}.spec.containers[0]`;
const paths = (spec: JobSpec, level: PodSecurityLevel) => checkPodSecurity(spec, level).map((i) => i.path);

describe('checkPodSecurity', () => {
  it.each<[string, JobSpec, string]>([
    [
      'a privileged container',
      job({}, { securityContext: { privileged: true } }),
      `${C}.securityContext.privileged`,
    ],
    ['hostNetwork', job({ hostNetwork: true }), `${P}.spec.hostNetwork`],
    ['hostPID', job({ hostPID: true }), `${P}.spec.hostPID`],
    ['hostIPC', job({ hostIPC: true }), `${P}.spec.hostIPC`],
    [
      'a hostPath volume',
      job({ volumes: [{ name: 'drivers', hostPath: { path: '/opt' } }] }),
      `${P}.spec.volumes[0].hostPath`,
    ],
    ['a hostPort', job({}, { ports: [{ containerPort: 8080, hostPort: 8080 }] }), `${C}.ports[0].hostPort`],
    [
      'IPC_LOCK, which EFA needs',
      job({}, { securityContext: { capabilities: { add: ['CHOWN', 'IPC_LOCK'] } } }),
      `${C}.securityContext.capabilities.add[1]`,
    ],
    [
      'an Unconfined seccomp profile',
      job({ securityContext: { seccompProfile: { type: 'Unconfined' } } }),
      `${P}.spec.securityContext.seccompProfile.type`,
    ],
    [
      'a non-default procMount',
      job({}, { securityContext: { procMount: 'Unmasked' } }),
      `${C}.securityContext.procMount`,
    ],
    [
      'an unsafe sysctl',
      job({ securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }] } }),
      `${P}.spec.securityContext.sysctls[0].name`,
    ],
    [
      'a HostProcess container',
      job({}, { securityContext: { windowsOptions: { hostProcess: true } } }),
      `${C}.securityContext.windowsOptions.hostProcess`,
    ],
    [
      'an SELinux user',
      job({}, { securityContext: { seLinuxOptions: { user: 'system_u' } } }),
      `${C}.securityContext.seLinuxOptions.user`,
    ],
    [
      'an unconfined AppArmor profile',
      job({}, { securityContext: { appArmorProfile: { type: 'Unconfined' } } }),
      `${C}.securityContext.appArmorProfile.type`,
    ],
    [
      'an unconfined AppArmor annotation',
      job(
        {},
        {},
        { annotations: { 'container.apparmor.security.beta.kubernetes.io/pytorch': 'unconfined' } },
      ),
      `${P}.metadata.annotations["container.apparmor.security.beta.kubernetes.io/pytorch"]`,
    ],
    [
      'a privileged init container',
      job({ initContainers: [{ name: 'init', securityContext: { privileged: true } }] }),
      `${P}.spec.initContainers[0].securityContext.privileged`,
    ],
  ])('refuses %s at baseline and at restricted, not at privileged', (_what, spec, path) => {
    expect(paths(spec, 'baseline')).toEqual([path]);
    expect(paths(spec, 'restricted')).toContain(path);
    expect(checkPodSecurity(spec, 'privileged')).toEqual([]);
  });

  it.each<[string, JobSpec, string]>([
    [
      'allowPrivilegeEscalation left unset',
      job({}, { securityContext: { capabilities: { drop: ['ALL'] } } }),
      `${C}.securityContext.allowPrivilegeEscalation`,
    ],
    [
      'allowPrivilegeEscalation true',
      job({}, { securityContext: { allowPrivilegeEscalation: true, capabilities: { drop: ['ALL'] } } }),
      `${C}.securityContext.allowPrivilegeEscalation`,
    ],
    [
      'capabilities not dropping ALL',
      job({}, { securityContext: { allowPrivilegeEscalation: false } }),
      `${C}.securityContext.capabilities.drop`,
    ],
    [
      'an added baseline capability other than NET_BIND_SERVICE',
      job(
        {},
        {
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'], add: ['CHOWN'] },
          },
        },
      ),
      `${C}.securityContext.capabilities.add[0]`,
    ],
    [
      'runAsNonRoot missing everywhere',
      job({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } } }),
      `${C}.securityContext.runAsNonRoot`,
    ],
    [
      'runAsUser 0',
      job({
        securityContext: { runAsNonRoot: true, runAsUser: 0, seccompProfile: { type: 'RuntimeDefault' } },
      }),
      `${P}.spec.securityContext.runAsUser`,
    ],
    [
      'no seccomp profile',
      job({ securityContext: { runAsNonRoot: true } }),
      `${C}.securityContext.seccompProfile.type`,
    ],
    [
      'a nfs volume',
      job({ volumes: [{ name: 'data', nfs: { server: 'fsx', path: '/' } }] }),
      `${P}.spec.volumes[0].nfs`,
    ],
  ])('refuses %s at restricted only', (_what, spec, path) => {
    expect(paths(spec, 'restricted')).toEqual([path]);
    expect(checkPodSecurity(spec, 'baseline')).toEqual([]);
  });

  it.each<[string, JobSpec]>([
    ['the compliant template', job({})],
    [
      'NET_BIND_SERVICE added after dropping ALL',
      job(
        {},
        {
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
          },
        },
      ),
    ],
    [
      'runAsNonRoot and seccomp set per container',
      job(
        { securityContext: {} },
        {
          securityContext: {
            allowPrivilegeEscalation: false,
            runAsNonRoot: true,
            seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' },
            capabilities: { drop: ['ALL'] },
          },
        },
      ),
    ],
    [
      'emptyDir, PVC, configMap and projected volumes',
      job({
        volumes: [
          { name: 'a', emptyDir: { medium: 'Memory' } },
          { name: 'b', persistentVolumeClaim: { claimName: 'fsx' } },
          { name: 'c', configMap: { name: 'x' } },
          { name: 'd', projected: { sources: [] } },
        ],
      }),
    ],
    [
      'a safe sysctl',
      job({
        securityContext: {
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
          sysctls: [{ name: 'net.ipv4.tcp_keepalive_time', value: '60' }],
        },
      }),
    ],
    ['hostPort 0', job({}, { ports: [{ containerPort: 8080, hostPort: 0 }] })],
  ])('accepts %s at restricted', (_what, spec) => {
    expect(checkPodSecurity(spec, 'restricted')).toEqual([]);
  });

  it('reports every container of every replica set, each with its own path', () => {
    const spec = job({});
    const template = spec.replicaSpecs[0]?.template;
    if (!template) throw new Error('no template');
    template.spec.containers.push({ name: 'sidecar', securityContext: { privileged: true } } as never);
    spec.replicaSpecs.push({
      name: 'other',
      replicas: 1,
      spares: 0,
      template: { spec: { containers: [{ name: 'c' }], hostNetwork: true } },
    });
    expect(paths(spec, 'baseline')).toEqual([
      `${P}.spec.containers[1].securityContext.privileged`,
      'spec.replicaSpecs[1].template.spec.hostNetwork',
    ]);
  });

  it('finds the FSDP fixture, which adds IPC_LOCK for EFA, allowed only at privileged', () => {
    const text = readFileSync(
      new URL('../fixtures/manifests/fsdp-hyperpodrun.yaml', import.meta.url),
      'utf8',
    );
    const result = parseJobManifest(text);
    if (!result.ok) throw new Error('fixture must parse');
    expect(checkPodSecurity(result.spec, 'baseline')).toEqual([
      {
        path: `${C}.securityContext.capabilities.add[0]`,
        message: 'capability `IPC_LOCK` is beyond the baseline set',
      },
    ]);
    expect(checkPodSecurity(result.spec, 'privileged')).toEqual([]);
  });

  it.each<[string, JobSpec, string]>([
    ['hostNetwork as the string "true"', job({ hostNetwork: 'true' }), `${P}.spec.hostNetwork`],
    ['hostPID as the number 1', job({ hostPID: 1 }), `${P}.spec.hostPID`],
    [
      'privileged as the string "yes"',
      job({}, { securityContext: { privileged: 'yes' } }),
      `${C}.securityContext.privileged`,
    ],
    [
      'runAsUser as the string "0"',
      job({ securityContext: { runAsNonRoot: true, runAsUser: '0' } }),
      `${P}.spec.securityContext.runAsUser`,
    ],
    [
      'a securityContext that is a string',
      job({}, { securityContext: 'privileged' }),
      `${C}.securityContext`,
    ],
    [
      'volumes as an object (a hostPath the volume check would not see)',
      job({ volumes: { name: 'host', hostPath: { path: '/' } } }),
      `${P}.spec.volumes`,
    ],
    [
      'capabilities.add as one string',
      job({}, { securityContext: { capabilities: { add: 'SYS_ADMIN', drop: ['ALL'] } } }),
      `${C}.securityContext.capabilities.add`,
    ],
    [
      'a hostPort as a string',
      job({}, { ports: [{ containerPort: 80, hostPort: '80' }] }),
      `${C}.ports[0].hostPort`,
    ],
  ])('refuses %s at every level, with its path, as Kubernetes would', (_what, spec, path) => {
    for (const level of ['privileged', 'baseline', 'restricted'] as const) {
      const issues = checkPodSecurity(spec, level);
      expect(issues.map((i) => i.path)).toContain(path);
      expect(issues.find((i) => i.path === path)?.message).toMatch(/^must be (a|an) \w+, not /);
    }
  });

  it('reads null security fields as unset, as Kubernetes does', () => {
    expect(checkPodSecurity(job({ hostNetwork: null }, { securityContext: null }), 'baseline')).toEqual([]);
  });
});
