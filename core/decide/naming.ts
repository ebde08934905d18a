/**
 * Names and numbers derived from a job's identity: pod names, the rendezvous port, and the map from a pod
 * name back to its slot. Pure and deterministic, so every trigger (and every retry of one) computes the
 * same names and two generations never share a pod name or a master port.
 */
import type { JobRecord, PodSlot } from '../job.ts';
import { slotPosition } from './draft.ts';

/** Longest pod name made: the pod name is also the pod's hostname, a DNS-1123 label. */
export const MAX_POD_NAME_LENGTH = 63;

/**
 * The pod name of one slot at one pod generation: `<job>-<replica>-<index>-g<podGeneration>`.
 *
 * When that is longer than 63 characters (job and replica names may each be 63), the `<job>-<replica>`
 * part is cut and tagged with a hash of the whole of it, as controllers shorten derived names:
 * `<first characters of job-replica>-<8 hex digits>-<index>-g<podGeneration>`, exactly 63 characters or
 * fewer. Names that fit are unchanged.
 *
 * Invariants: always a valid DNS-1123 label of at most 63 characters (given DNS-label job and replica
 * names); distinct (replica, index, podGeneration) give distinct names (the hash separates replicas whose
 * cut prefixes agree), so a replacement pod never collides with the dying one (a create of the same
 * name would 409 until the old pod is gone); deterministic.
 */
export const podName = (jobName: string, replica: string, index: number, podGeneration: number): string => {
  const base = `${jobName}-${replica}`;
  const suffix = `-${index}-g${podGeneration}`;
  if (base.length + suffix.length <= MAX_POD_NAME_LENGTH) return base + suffix;
  const tag = fnv1a(base).toString(16).padStart(8, '0');
  const keep = base.slice(0, MAX_POD_NAME_LENGTH - suffix.length - tag.length - 1).replace(/-+$/, '');
  return `${keep}-${tag}${suffix}`;
};

/** A DNS-1035 label, what Kubernetes requires of a Service name: a letter first, then as a DNS-1123 label. */
export const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The name of the job's headless Service (and its pods' `subdomain`). Service names must be DNS-1035
 * labels (a letter first), while job names are DNS-1123 labels and may start with a digit: such a name gets
 * the prefix `j-`, and when that makes it longer than 63 characters it is cut and tagged with a hash of the
 * job name, as `podName` shortens names. A job name starting with a letter is used as it is, except one
 * that a prefixed name could equal (`j-1a`, `j-j-1a`, ...: `j-`s then a digit), which is prefixed too.
 *
 * Invariants: a valid DNS-1035 label of at most 63 characters (given a DNS-1123 label job name);
 * deterministic; names that are not cut are distinct for distinct job names (job `1a` → `j-1a`, job
 * `j-1a` → `j-j-1a`), and cut ones carry a hash of the whole job name.
 */
export const serviceName = (jobName: string): string => {
  if (!/^(j-)*[0-9]/.test(jobName)) return jobName;
  const prefixed = `j-${jobName}`;
  if (prefixed.length <= MAX_POD_NAME_LENGTH) return prefixed;
  const tag = fnv1a(jobName).toString(16).padStart(8, '0');
  const keep = prefixed.slice(0, MAX_POD_NAME_LENGTH - tag.length - 1).replace(/-+$/, '');
  return `${keep}-${tag}`;
};

/**
 * Parses a name made by `podName` back into its parts; undefined for a name that is not one of this job's.
 * Replica names may contain dashes: the index and generation are read from the end. A shortened name
 * (see `podName`) names its replica only through a hash: it parses when `replicas` lists the job's
 * replica names.
 */
export const parsePodName = (
  jobName: string,
  name: string,
  replicas: readonly string[] = [],
): { replica: string; index: number; podGeneration: number } | undefined => {
  const m = /^(.+)-(\d+)-g(\d+)$/.exec(name);
  if (!m) return undefined;
  const index = Number(m[2]);
  const podGeneration = Number(m[3]);
  const prefix = `${jobName}-`;
  const head = m[1] as string;
  if (head.startsWith(prefix) && head.length > prefix.length) {
    const replica = head.slice(prefix.length);
    if (podName(jobName, replica, index, podGeneration) === name) return { replica, index, podGeneration };
  }
  const replica = replicas.find((r) => podName(jobName, r, index, podGeneration) === name);
  return replica === undefined ? undefined : { replica, index, podGeneration };
};

/**
 * The slot that currently holds this pod, or undefined (a replaced, stray or foreign pod). O(1) in
 * decide's draft (decide/draft.ts indexes it), a scan otherwise.
 */
export const slotForPod = (job: Pick<JobRecord, 'pods'>, pod: string): PodSlot | undefined =>
  job.pods[slotPosition(job, pod)];

/** A record's slots by pod name and by (replica, index): build once, look up many pods in O(1). */
export interface SlotIndex {
  replicas: string[];
  byName: Map<string, PodSlot>;
  byPlace: Map<string, PodSlot>;
}

const place = (replica: string, index: number): string => `${replica}#${index}`;

/**
 * Indexes `job.pods` (the first slot wins a duplicate key, as a scan would find it). The index describes the
 * slots as they are now: rebuild it after the record changes.
 */
export const slotIndex = (job: Pick<JobRecord, 'pods'>): SlotIndex => {
  const byName = new Map<string, PodSlot>();
  const byPlace = new Map<string, PodSlot>();
  const replicas = new Set<string>();
  for (const s of job.pods) {
    if (!byName.has(s.name)) byName.set(s.name, s);
    const key = place(s.replica, s.index);
    if (!byPlace.has(key)) byPlace.set(key, s);
    replicas.add(s.replica);
  }
  return { replicas: [...replicas], byName, byPlace };
};

/**
 * The slot (by replica and index) a pod name refers to, whichever pod generation it has. Pass `index`
 * (`slotIndex(job)`) when looking up many pods of one record.
 */
export const slotForPodName = (
  job: Pick<JobRecord, 'name' | 'pods'>,
  pod: string,
  index: SlotIndex = slotIndex(job),
): PodSlot | undefined => {
  const parts = parsePodName(job.name, pod, index.replicas);
  return parts ? index.byPlace.get(place(parts.replica, parts.index)) : undefined;
};

/** Lowest rendezvous port handed out: ports are 20000–39999 (clear of the agent's 8080 and of ephemeral ports). */
export const MASTER_PORT_MIN = 20000;
/** How many rendezvous ports there are (MASTER_PORT_MIN + SPAN − 1 is the highest). */
export const MASTER_PORT_SPAN = 20000;
/** A prime stride coprime with the span: consecutive generations get different ports (period = span). */
const PORT_STRIDE = 7919;

/** FNV-1a 32-bit: a stable, dependency-free string hash. */
const fnv1a = (text: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
};

/**
 * The rank-0 rendezvous port for one generation of a job, in [20000, 39999]. Deterministic (a retried
 * trigger sends the same port) and different for consecutive generations, so a restarted rendezvous never
 * binds the port the dying one may still hold.
 */
export const masterPortFor = (uid: string, generation: number): number =>
  MASTER_PORT_MIN + (((fnv1a(uid) % MASTER_PORT_SPAN) + generation * PORT_STRIDE) % MASTER_PORT_SPAN);
