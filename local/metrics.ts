/**
 * `GET /metrics` of the local API: the same durable counter totals and latest-value gauges the Lambdas push
 * to Amazon Managed Prometheus, rendered in Prometheus text format for a local scrape when no remote-write
 * URL is given.
 */
import { renderPrometheusText } from '../adapters/prometheus/text.ts';
import type { JobStore } from '../core/ports.ts';

/** Reads the totals from the store and renders them (text exposition format 0.0.4). */
export async function metricsText(store: JobStore): Promise<string> {
  const [counters, gauges] = await Promise.all([store.readCounters(), store.readGauges?.() ?? []]);
  return renderPrometheusText(counters, gauges);
}
