/**
 * What a pod's output line becomes on its way to CloudWatch Logs, per log-shipping dialect. Pure: the local
 * shipper (local/shipper.ts) turns each captured line into the log stream and event message(s) built here.
 *
 * Dialects:
 * - `stock` (default): the Amazon CloudWatch Observability EKS add-on (Container Insights' Fluent Bit) as
 *   installed: log group `/aws/containerinsights/<cluster>/application`, stream
 *   `<node>-application.var.log.containers.<pod>_<namespace>_<container>-<64 hex container id>.log`, each
 *   event Fluent Bit's record as JSON — `time`, `stream`, `_p`, `log`, and `kubernetes` {`pod_name`,
 *   `namespace_name`, `pod_id`, `host`, `container_name`, `docker_id`, `container_hash`,
 *   `container_image`} — with **no labels** (the add-on's kubernetes filter has `Labels Off` and
 *   `Annotations Off`). Sources: the add-on's Fluent Bit `application-log.conf` (tail input with
 *   `multiline.parser docker, cri`; kubernetes filter `Labels Off`; cloudwatch_logs output with
 *   `log_stream_prefix ${HOST_NAME}-application.`) and the Container Insights user guide's record example.
 * - `labels`: the same records with `kubernetes.labels` (a Fluent Bit configured with `Labels On`).
 * - `raw`: plain text — each event's message is the line itself (Fluent Bit's cloudwatch_logs output with
 *   `log_key log`), the stream `from-fluent-bit-kube.var.log.containers.<pod>_<namespace>_<container>-<id>.log`
 *   (`log_stream_prefix from-fluent-bit-` + the tail input's tag, as in aws-for-fluent-bit's examples).
 *
 * Long lines, as the stock path handles them:
 * 1. containerd writes a line longer than 16 KiB as several CRI log-file entries: `P` (partial) ones and a
 *    final `F` (containerd `pkg/cri/io/logger.go`, `maxLen` defaults to 16 KiB: the kubelet's
 *    `containerLogMaxSize` does not change it);
 * 2. the add-on's `multiline.parser docker, cri` joins them back into one record; the joined record keeps
 *    the first entry's fields (so `_p` is `P`) and the concatenated `log` (Fluent Bit multiline docs, "cri"
 *    built-in parser);
 * 3. Fluent Bit's cloudwatch_logs output truncates an event larger than CloudWatch's event limit (256 KiB
 *    including 26 bytes of per-event overhead in the add-on's Fluent Bit; raised to 1 MB in late-2025
 *    releases) — cutting a JSON record mid-way leaves invalid JSON, which the `logs` handler must then
 *    attribute by the stream name.
 * The stand-in does all three (`criFragments`, `joinCriFragments`, `truncateEvent`), so a handler that
 * only works for short, well-formed records fails locally too.
 */
import { createHash } from 'node:crypto';

/** The log-shipping dialects the local plane can speak. */
export const LOG_DIALECTS = ['stock', 'labels', 'raw'] as const;
export type LogDialect = (typeof LOG_DIALECTS)[number];

/** One line of container output and where it came from (what the local kubelet reports). */
export interface ContainerLine {
  namespace: string;
  pod: string;
  container: string;
  /** The node (Fluent Bit's `host`, the stream name's prefix). Default `local`. */
  node?: string;
  /** The pod's labels (only the `labels` dialect ships them). */
  labels?: Record<string, string>;
  /** The pod's uid (`kubernetes.pod_id`); derived from the pod's name when absent. */
  podUid?: string;
  /** The container image (`kubernetes.container_image`); `local/<container>:latest` when absent. */
  image?: string;
  stream: 'stdout' | 'stderr';
  /** The line as the process wrote it, without the newline. */
  line: string;
  /** Epoch ms when the line was written. */
  timestamp: number;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The container's runtime id (64 hex digits), stable for a (namespace, pod, container). */
export const containerId = (l: Pick<ContainerLine, 'namespace' | 'pod' | 'container'>): string =>
  sha256(`container/${l.namespace}/${l.pod}/${l.container}`);

function podId(l: Pick<ContainerLine, 'namespace' | 'pod' | 'podUid'>): string {
  if (l.podUid) return l.podUid;
  const h = sha256(`pod/${l.namespace}/${l.pod}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The tail input's file name of a container's log: `<pod>_<namespace>_<container>-<id>.log`. */
const logFileName = (l: Pick<ContainerLine, 'namespace' | 'pod' | 'container'>): string =>
  `${l.pod}_${l.namespace}_${l.container}-${containerId(l)}.log`;

/** The log stream a container's events go to in `dialect`. */
export function logStreamName(
  l: Pick<ContainerLine, 'node' | 'namespace' | 'pod' | 'container'>,
  dialect: LogDialect = 'stock',
): string {
  if (dialect === 'raw') return `from-fluent-bit-kube.var.log.containers.${logFileName(l)}`;
  return `${l.node ?? 'local'}-application.var.log.containers.${logFileName(l)}`;
}

/** containerd's limit on one CRI log-file entry (bytes of the line). */
export const CRI_MAX_ENTRY_BYTES = 16 * 1024;

/** One CRI log-file entry: the tag (`P` partial, `F` full/final) and its piece of the line. */
export interface CriEntry {
  tag: 'P' | 'F';
  log: string;
}

/** Splits a line as containerd writes it: pieces of at most 16 KiB (never inside a UTF-8 character). */
export function criFragments(line: string): CriEntry[] {
  const bytes = Buffer.from(line, 'utf8');
  if (bytes.length <= CRI_MAX_ENTRY_BYTES) return [{ tag: 'F', log: line }];
  const out: CriEntry[] = [];
  let start = 0;
  while (bytes.length - start > CRI_MAX_ENTRY_BYTES) {
    let end = start + CRI_MAX_ENTRY_BYTES;
    while (end > start && ((bytes[end] as number) & 0xc0) === 0x80) end--; // continuation byte: back off
    out.push({ tag: 'P', log: bytes.subarray(start, end).toString('utf8') });
    start = end;
  }
  out.push({ tag: 'F', log: bytes.subarray(start).toString('utf8') });
  return out;
}

/** Joins a run of entries ending in `F` as the add-on's `multiline.parser cri` does: first entry's tag. */
export function joinCriFragments(entries: readonly CriEntry[]): CriEntry {
  return { tag: entries[0]?.tag ?? 'F', log: entries.map((e) => e.log).join('') };
}

/** The largest event message the add-on's Fluent Bit sends (bytes): 256 KiB less 26 bytes of overhead. */
export const MAX_EVENT_BYTES = 256 * 1024 - 26;

/** Cuts `message` to `MAX_EVENT_BYTES` UTF-8 bytes (at a character boundary), as the output plugin does. */
export function truncateEvent(message: string, maxBytes = MAX_EVENT_BYTES): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= maxBytes) return message;
  let end = maxBytes;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** containerd's RFC 3339 timestamp with nanoseconds (`2026-12-05T10:00:00.123000000Z`). */
const criTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, '000000Z');

/** Fluent Bit's record for one (joined) entry, as the add-on serialises it. */
export function fluentBitRecord(l: ContainerLine, entry: CriEntry, withLabels: boolean): string {
  const id = containerId(l);
  const image = l.image ?? `local/${l.container}:latest`;
  return JSON.stringify({
    time: criTime(l.timestamp),
    stream: l.stream,
    _p: entry.tag,
    log: entry.log,
    kubernetes: {
      pod_name: l.pod,
      namespace_name: l.namespace,
      pod_id: podId(l),
      ...(withLabels ? { labels: l.labels ?? {} } : {}),
      host: l.node ?? 'local',
      container_name: l.container,
      docker_id: id,
      container_hash: `${image.replace(/:[^:/]*$/, '')}@sha256:${sha256(`image/${image}`)}`,
      container_image: image,
    },
  });
}

/** The event message one captured line becomes in `dialect` (split, joined and truncated as above). */
export function eventMessage(l: ContainerLine, dialect: LogDialect): string {
  const entry = joinCriFragments(criFragments(l.line));
  if (dialect === 'raw') return truncateEvent(entry.log);
  return truncateEvent(fluentBitRecord(l, entry, dialect === 'labels'));
}
