import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metric, MetricHelp, type MetricName } from '../../core/metrics.ts';
import { hasPrometheus, type LocalPrometheus, startPrometheus } from '../support/prometheus.ts';

interface Panel {
  id: number;
  title: string;
  datasource: { type: string; uid: string };
  targets: { expr: string; refId: string; datasource: { uid: string } }[];
}
const dashboard = JSON.parse(
  readFileSync(new URL('../../grafana/trainkeeper-dashboard.json', import.meta.url), 'utf8'),
) as { panels: Panel[]; templating: { list: { name: string; type: string; query: string }[] } };
/** Grafana's data-source variable reference (a literal `${…}`, not a JS template). */
const DATASOURCE_VAR = ['$', '{datasource}'].join('');
const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));

/** Grafana's built-in interval variables, as Grafana would substitute them before querying. */
const substitute = (expr: string) =>
  expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h');

const allowedNames = new Set(
  (Object.values(Metric) as MetricName[]).flatMap((name) =>
    MetricHelp[name].type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name],
  ),
);
const referencedNames = (expr: string) =>
  expr.match(/\b(?:hyperpod_training_operator|trainkeeper)_[a-zA-Z0-9_]+/g) ?? [];

describe('Grafana dashboard', () => {
  it('queries the Prometheus data source variable from every panel and target', () => {
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    for (const p of dashboard.panels) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: DATASOURCE_VAR });
      for (const t of p.targets) expect(t.datasource.uid).toBe(DATASOURCE_VAR);
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
  });

  it('refers only to metric names of the catalog, with histogram suffixes on histograms only', () => {
    const unknown = exprs.flatMap(({ panel, expr }) =>
      referencedNames(expr)
        .filter((n) => !allowedNames.has(n))
        .map((n) => `${panel}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it('shows every metric of the catalog somewhere', () => {
    const used = new Set(
      exprs.flatMap(({ expr }) => referencedNames(expr).map((n) => n.replace(/_(bucket|sum|count)$/, ''))),
    );
    const missing = (Object.values(Metric) as string[]).filter((m) => !used.has(m));
    expect(missing).toEqual([]);
  });

  describe.skipIf(!hasPrometheus())('against a real Prometheus', () => {
    let prom: LocalPrometheus;
    beforeAll(async () => {
      prom = await startPrometheus();
    });
    afterAll(() => prom?.stop());

    it('rejects a malformed expression, so the check below is meaningful', async () => {
      const res = await prom.query('sum by (le (rate(x[5m]))');
      expect(res.status).toBe('error');
      expect(res.errorType).toBe('bad_data');
    });

    it.each(exprs)('parses and evaluates the PromQL of panel "$panel": $expr', async ({ expr }) => {
      const res = await prom.query(substitute(expr));
      expect(res.error ?? '').toBe('');
      expect(res.status).toBe('success');
    });
  });
});

if (!hasPrometheus()) console.warn('SKIPPED: dashboard PromQL parse checks: no prometheus binary on PATH');
