/**
 * Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/) applied to
 * a job's pod templates before TrainKeeper creates any pod, so that a job is refused with field paths
 * instead of failing pod by pod at admission.
 *
 * First, at every level, the fields these checks read must have the types Kubernetes gives them
 * (`checkSecurityFieldTypes`): the template passes through the manifest parser untyped, and a check that
 * reads `hostNetwork: "true"` as "not `true`" would let it by. Kubernetes does not convert such a value (the
 * API server refuses the pod), so neither do we: it is refused with its path.
 *
 * Levels, cumulative:
 * - `privileged`: no level checks.
 * - `baseline`: no privileged containers, no host namespaces (hostNetwork/hostPID/hostIPC), no hostPort,
 *   no hostPath volumes, added capabilities only from the baseline list, no Windows HostProcess, no
 *   `Unconfined` seccomp/AppArmor, only the default /proc mount, restricted SELinux options, only safe
 *   sysctls. `allowPrivilegeEscalation: true` is allowed at this level.
 * - `restricted`: also runAsNonRoot (pod or every container), no `runAsUser: 0`,
 *   `allowPrivilegeEscalation: false`, capabilities drop `ALL` (add only `NET_BIND_SERVICE`), seccomp
 *   `RuntimeDefault`/`Localhost`, and only the volume types that cannot reach the host.
 *
 * GPU training pods often need `IPC_LOCK` (and sometimes `SYS_RESOURCE`) for EFA/RDMA memory pinning,
 * hostPath mounts for drivers, or a large `/dev/shm`: such jobs need the `privileged` level, in a
 * namespace the operator allows for it.
 *
 * Invariant: pure; every violation in every container of every replica set is reported, each with a path
 * into the template, e.g. `spec.replicaSpecs[0].template.spec.containers[1].securityContext.privileged`.
 */
import type { FieldIssue, JobSpec, PodTemplateSpec } from './types.ts';

/** The levels `checkPodSecurity` knows, least strict first. */
export const POD_SECURITY_LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export type PodSecurityLevel = (typeof POD_SECURITY_LEVELS)[number];

/** Capabilities a baseline pod may add (the Kubernetes default container capability set). */
export const BASELINE_CAPABILITIES = [
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
] as const;

const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);

const RESTRICTED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

const SELINUX_TYPES = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);
const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';

type Raw = Record<string, unknown>;
const obj = (v: unknown): Raw | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Every violation of `level` in the job's pod templates; `[]` means the job may run at that level.
 */
export function checkPodSecurity(spec: JobSpec, level: PodSecurityLevel): FieldIssue[] {
  const types = spec.replicaSpecs.flatMap((replica, i) =>
    checkSecurityFieldTypes(replica.template, `spec.replicaSpecs[${i}].template`),
  );
  if (types.length > 0 || level === 'privileged') return types;
  return spec.replicaSpecs.flatMap((replica, i) =>
    checkTemplate(replica.template, `spec.replicaSpecs[${i}].template`, level === 'restricted'),
  );
}

/** The Kubernetes type of a field: a scalar, an object with known fields (others unchecked), or a list. */
type Shape = 'boolean' | 'integer' | 'string' | { fields: Record<string, Shape> } | { items: Shape };

const SECURITY_CONTEXT_COMMON: Record<string, Shape> = {
  runAsUser: 'integer',
  runAsNonRoot: 'boolean',
  windowsOptions: { fields: { hostProcess: 'boolean' } },
  seccompProfile: { fields: { type: 'string' } },
  appArmorProfile: { fields: { type: 'string' } },
  seLinuxOptions: { fields: { type: 'string', user: 'string', role: 'string', level: 'string' } },
};

const CONTAINER_SHAPE: Shape = {
  fields: {
    securityContext: {
      fields: {
        ...SECURITY_CONTEXT_COMMON,
        privileged: 'boolean',
        allowPrivilegeEscalation: 'boolean',
        procMount: 'string',
        capabilities: { fields: { add: { items: 'string' }, drop: { items: 'string' } } },
      },
    },
    ports: { items: { fields: { hostPort: 'integer' } } },
  },
};

/** The shape of every field `checkTemplate` reads, under a template's `spec`. */
const POD_SPEC_SHAPE: Shape = {
  fields: {
    hostNetwork: 'boolean',
    hostPID: 'boolean',
    hostIPC: 'boolean',
    securityContext: {
      fields: { ...SECURITY_CONTEXT_COMMON, sysctls: { items: { fields: { name: 'string' } } } },
    },
    volumes: { items: { fields: {} } },
    initContainers: { items: CONTAINER_SHAPE },
    containers: { items: CONTAINER_SHAPE },
    ephemeralContainers: { items: CONTAINER_SHAPE },
  },
};

const describeValue = (v: unknown): string =>
  typeof v === 'string'
    ? `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
    : Array.isArray(v)
      ? 'a list'
      : typeof v === 'object'
        ? 'an object'
        : `${typeof v} ${String(v)}`;

/**
 * Every security-relevant field of `template.spec` whose value has the wrong type (`null` counts as unset,
 * as Kubernetes reads it). Walks the fixed shape, not the input, so its depth is the shape's.
 */
export function checkSecurityFieldTypes(template: PodTemplateSpec, base: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const walk = (value: unknown, shape: Shape, path: string): void => {
    if (value === undefined || value === null) return;
    const fail = (kind: string) =>
      issues.push({
        path,
        message: `must be ${kind}, not ${describeValue(value)} (Kubernetes does not convert it)`,
      });
    if (shape === 'boolean') {
      if (typeof value !== 'boolean') fail('a boolean');
    } else if (shape === 'integer') {
      if (!Number.isInteger(value)) fail('an integer');
    } else if (shape === 'string') {
      if (typeof value !== 'string') fail('a string');
    } else if ('items' in shape) {
      if (!Array.isArray(value)) fail('a list');
      else for (const [i, item] of value.entries()) walk(item, shape.items, `${path}[${i}]`);
    } else if (!obj(value)) {
      fail('an object');
    } else {
      for (const [key, inner] of Object.entries(shape.fields))
        walk((value as Raw)[key], inner, `${path}.${key}`);
    }
  };
  walk(template.spec, POD_SPEC_SHAPE, `${base}.spec`);
  return issues;
}

function checkTemplate(template: PodTemplateSpec, base: string, restricted: boolean): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  const pod = template.spec as Raw;
  const podPath = `${base}.spec`;
  const podSc = obj(pod.securityContext) ?? {};
  const podScPath = `${podPath}.securityContext`;

  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (pod[field] === true)
      add(`${podPath}.${field}`, 'must not be true: host namespaces are forbidden at baseline');
  }
  if (obj(podSc.windowsOptions)?.hostProcess === true) {
    add(
      `${podScPath}.windowsOptions.hostProcess`,
      'must not be true: HostProcess pods are forbidden at baseline',
    );
  }
  checkSeccomp(podSc, podScPath, add);
  checkAppArmor(podSc, podScPath, add);
  checkSeLinux(podSc, podScPath, add);
  list(podSc.sysctls).forEach((s, i) => {
    const name = obj(s)?.name;
    if (typeof name === 'string' && !SAFE_SYSCTLS.has(name)) {
      add(`${podScPath}.sysctls[${i}].name`, `sysctl \`${name}\` is not in the safe set allowed at baseline`);
    }
  });
  for (const [key, value] of Object.entries(template.metadata?.annotations ?? {})) {
    if (
      key.startsWith(APPARMOR_ANNOTATION) &&
      value !== 'runtime/default' &&
      !value.startsWith('localhost/')
    ) {
      add(
        `${base}.metadata.annotations["${key}"]`,
        'must be `runtime/default` or `localhost/<profile>` at baseline',
      );
    }
  }

  list(pod.volumes).forEach((v, i) => {
    const volume = obj(v) ?? {};
    const types = Object.keys(volume).filter((k) => k !== 'name');
    if (volume.hostPath !== undefined) {
      add(`${podPath}.volumes[${i}].hostPath`, 'hostPath volumes are forbidden at baseline');
    } else if (restricted) {
      for (const type of types.filter((t) => !RESTRICTED_VOLUME_TYPES.has(t))) {
        add(`${podPath}.volumes[${i}].${type}`, `volume type \`${type}\` is not allowed at restricted`);
      }
    }
  });

  if (restricted) {
    if (podSc.runAsUser === 0) add(`${podScPath}.runAsUser`, 'must not be 0 (root) at restricted');
    if (podSc.runAsNonRoot === false) add(`${podScPath}.runAsNonRoot`, 'must not be false at restricted');
  }

  for (const group of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    list(pod[group]).forEach((c, i) => {
      const container = obj(c) ?? {};
      const path = `${podPath}.${group}[${i}]`;
      const sc = obj(container.securityContext) ?? {};
      const scPath = `${path}.securityContext`;
      if (sc.privileged === true)
        add(`${scPath}.privileged`, 'must not be true: privileged containers are forbidden at baseline');
      if (obj(sc.windowsOptions)?.hostProcess === true) {
        add(
          `${scPath}.windowsOptions.hostProcess`,
          'must not be true: HostProcess containers are forbidden at baseline',
        );
      }
      if (sc.procMount !== undefined && sc.procMount !== 'Default') {
        add(`${scPath}.procMount`, 'must be `Default` at baseline');
      }
      checkSeccomp(sc, scPath, add);
      checkAppArmor(sc, scPath, add);
      checkSeLinux(sc, scPath, add);
      list(container.ports).forEach((p, j) => {
        const hostPort = obj(p)?.hostPort;
        if (hostPort !== undefined && hostPort !== 0)
          add(`${path}.ports[${j}].hostPort`, 'host ports are forbidden at baseline');
      });
      const caps = obj(sc.capabilities) ?? {};
      const allowedAdds: readonly string[] = restricted ? ['NET_BIND_SERVICE'] : BASELINE_CAPABILITIES;
      list(caps.add).forEach((cap, j) => {
        if (typeof cap === 'string' && !allowedAdds.includes(cap)) {
          add(
            `${scPath}.capabilities.add[${j}]`,
            restricted
              ? `capability \`${cap}\` may not be added at restricted (only NET_BIND_SERVICE)`
              : `capability \`${cap}\` is beyond the baseline set`,
          );
        }
      });
      if (!restricted) return;
      if (sc.allowPrivilegeEscalation !== false) {
        add(`${scPath}.allowPrivilegeEscalation`, 'must be false at restricted');
      }
      if (!list(caps.drop).includes('ALL'))
        add(`${scPath}.capabilities.drop`, 'must include `ALL` at restricted');
      if (sc.runAsUser === 0) add(`${scPath}.runAsUser`, 'must not be 0 (root) at restricted');
      if (sc.runAsNonRoot === false) add(`${scPath}.runAsNonRoot`, 'must not be false at restricted');
      else if (sc.runAsNonRoot !== true && podSc.runAsNonRoot !== true) {
        add(`${scPath}.runAsNonRoot`, 'must be true at restricted (here or in the pod securityContext)');
      }
      const type = obj(sc.seccompProfile)?.type ?? obj(podSc.seccompProfile)?.type;
      if (type !== 'RuntimeDefault' && type !== 'Localhost') {
        add(
          `${scPath}.seccompProfile.type`,
          'must be `RuntimeDefault` or `Localhost` at restricted (here or in the pod securityContext)',
        );
      }
    });
  }
  return dedupe(issues);
}

type Add = (path: string, message: string) => void;

function checkSeccomp(sc: Raw, path: string, add: Add): void {
  if (obj(sc.seccompProfile)?.type === 'Unconfined') {
    add(`${path}.seccompProfile.type`, 'must not be `Unconfined` at baseline');
  }
}

function checkAppArmor(sc: Raw, path: string, add: Add): void {
  const type = obj(sc.appArmorProfile)?.type;
  if (type !== undefined && type !== 'RuntimeDefault' && type !== 'Localhost') {
    add(`${path}.appArmorProfile.type`, 'must be `RuntimeDefault` or `Localhost` at baseline');
  }
}

function checkSeLinux(sc: Raw, path: string, add: Add): void {
  const se = obj(sc.seLinuxOptions);
  if (!se) return;
  if (typeof se.type === 'string' && !SELINUX_TYPES.has(se.type)) {
    add(`${path}.seLinuxOptions.type`, `SELinux type \`${se.type}\` is not allowed at baseline`);
  }
  if (se.user !== undefined && se.user !== '')
    add(`${path}.seLinuxOptions.user`, 'must not be set at baseline');
  if (se.role !== undefined && se.role !== '')
    add(`${path}.seLinuxOptions.role`, 'must not be set at baseline');
}

function dedupe(issues: FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => !seen.has(i.path) && seen.add(i.path) !== undefined);
}
