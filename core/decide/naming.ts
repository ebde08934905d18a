/**
 * Names and numbers derived from a job's identity: pod names, the rendezvous port, and the map from a pod
 * name back to its slot. Pure and deterministic, so every trigger (and every retry of one) computes the
 * same names and two generations never share a pod name or a master port.
 */
import type { JobRecord, PodSlot } from '../job.ts';

/**
 * The pod name of one slot at one pod generation: `<job>-<replica>-<index>-g<podGeneration>`.
 * Invariant: distinct (replica, index, podGeneration) give distinct names, so a replacement pod never
 * collides with the dying one (a create of the same name would 409 until the old pod is gone).
 */
export const podName = (jobName: string, replica: string, index: number, podGeneration: number): string =>
  `${jobName}-${replica}-${index}-g${podGeneration}`;

/**
 * Parses a name made by `podName` back into its parts; undefined for a name that is not one of this job's.
 * Replica names may contain dashes: the index and generation are read from the end.
 */
export const parsePodName = (
  jobName: string,
  name: string,
): { replica: string; index: number; podGeneration: number } | undefined => {
  const prefix = `${jobName}-`;
  if (!name.startsWith(prefix)) return undefined;
  const m = /^(.+)-(\d+)-g(\d+)$/.exec(name.slice(prefix.length));
  if (!m) return undefined;
  return { replica: m[1]!, index: Number(m[2]), podGeneration: Number(m[3]) };
};

/** The slot that currently holds this pod, or undefined (a replaced, stray or foreign pod). */
export const slotForPod = (job: Pick<JobRecord, 'pods'>, pod: string): PodSlot | undefined =>
  job.pods.find((s) => s.name === pod);

/** The slot (by replica and index) a pod name refers to, whichever pod generation it has. */
export const slotForPodName = (job: Pick<JobRecord, 'name' | 'pods'>, pod: string): PodSlot | undefined => {
  const parts = parsePodName(job.name, pod);
  if (!parts) return undefined;
  return job.pods.find((s) => s.replica === parts.replica && s.index === parts.index);
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
