/**
 * Rule-engine throughput: every preset + four user rules over a generated corpus of realistic training
 * output (~200 bytes a line, 400k lines, 16 streams; mix: 12 % Megatron-LM iteration lines, 10 % Hugging
 * Face Trainer dicts, 28 % NCCL INFO, 18 % NeMo/Lightning progress bars, 14 % NeMo info, 8 % PyTorch
 * warnings, 10 % DeepSpeed step lines), evaluated in 1,000-line batches as the logs Lambda sees them. In the same run, a baseline evaluates the same rules HyperPod's way: every rule's
 * pattern anchored-matched (`^(?:…)`, Python `re.match`) on every line with plain V8 regexes, the
 * captured metric parsed. Then the hostile pattern `(a+)+$` over non-matching lines of two lengths, to
 * show time per line growing linearly. Prints figures; asserts nothing (targets: ≥ 1,000,000 lines/s and
 * ≥ 5× the baseline).
 */

import { PRESET_NAMES } from '../core/spec/preset-names.ts';
import type { LogRule } from '../core/spec/types.ts';
import { compileRules, evaluateLines, initialRuleState } from '../rules/engine.ts';
import { compilePattern } from '../rules/matcher.ts';
import { loadPresetRules } from '../rules/presets/index.ts';
import type { LogLine } from '../rules/types.ts';

const LINES = 400_000;
const BATCH = 1_000;

const userRule = (r: Partial<LogRule> & Pick<LogRule, 'name' | 'logPattern'>): LogRule => ({
  metricEvaluationDataPoints: 1,
  faultOnMatch: false,
  scope: 'job',
  source: { kind: 'user' },
  ...r,
});

/** Four rules in the style of HyperPod's documented recipes. */
export const USER_RULES: LogRule[] = [
  userRule({
    name: 'TrainingHang',
    logPattern: '.*iteration\\s+(\\d+)/',
    expectedStartCutOffInSeconds: 600,
    expectedRecurringFrequencyInSeconds: 300,
  }),
  userRule({
    name: 'LossSpike',
    logPattern: '.*lm loss: (\\d+(?:\\.\\d+)?(?:E[+-]\\d+)?)',
    metricThreshold: 20,
    operator: 'gt',
    metricEvaluationDataPoints: 5,
  }),
  userRule({
    name: 'LowTFLOPs',
    logPattern: '.*\\(TFLOP/s/GPU\\): (\\d+(?:\\.\\d+)?)',
    metricThreshold: 100,
    operator: 'lt',
    metricEvaluationDataPoints: 5,
  }),
  userRule({ name: 'HFLoss', logPattern: ".*'loss': ([0-9.]+)", metricThreshold: 10, operator: 'gt' }),
];

/** Deterministic pseudo-random numbers (a corpus that is the same on every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function corpus(n: number): LogLine[] {
  const rnd = lcg(7);
  const lines: LogLine[] = [];
  const t0 = Date.UTC(2026, 2, 1);
  for (let i = 0; i < n; i++) {
    const rank = i % 16;
    const step = Math.floor(i / 16);
    const loss = (2 + rnd()).toFixed(4);
    const r = rnd();
    const hh = `10:${String(step % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}`;
    let text: string;
    if (r < 0.12) {
      text = ` [2026-03-01 ${hh}] iteration ${String(step).padStart(8)}/  500000 | consumed samples: ${String(step * 512).padStart(12)} | elapsed time per iteration (ms): 1490.${rank} | throughput per GPU (TFLOP/s/GPU): 40${rank % 10}.7 | learning rate: 2.99${rank}000E-04 | global batch size:   512 | lm loss: ${loss}E+00 | loss scale: 1.0 | grad norm: 0.81 | number of skipped iterations:   0 |`;
    } else if (r < 0.22) {
      text = `{'loss': ${loss}, 'grad_norm': 0.${Math.floor(rnd() * 9000)}, 'learning_rate': 4.9${rank}e-05, 'epoch': 0.${step % 100}, 'step': ${step}, 'num_input_tokens_seen': ${step * 524288}, 'train_tokens_per_second': 3215.4}`;
    } else if (r < 0.5) {
      text = `ip-10-1-52-${rank}:2${rank}1:9${rank}6 [${rank % 8}] NCCL INFO Channel 0${rank % 8}/0 : ${rank}[${rank % 8}] -> ${(rank + 1) % 16}[${(rank + 1) % 8}] [send] via NET/Libfabric/${rank % 4}/GDRDMA comm 0x5581e2d0 nRanks 16 localRanks 8 localRank ${rank % 8} MNNVL 0`;
    } else if (r < 0.68) {
      text = `Epoch 0: :   ${step % 100}%|██▍       | ${step}/100000 [00:${String(step % 60).padStart(2, '0')}<591:33:24, reduced_train_loss=${loss}, global_step=${step}.000, consumed_samples=${step * 512}.0, train_step_timing in s=2.11, val_loss=2.41]`;
    } else if (r < 0.82) {
      text = `[NeMo I 2026-03-01 ${hh} nemo_logging:381] Rank ${rank}: dataloader worker ${step % 4} prefetched shard ${step} of /fsx/data/tokenized/train-${String(step % 1000).padStart(5, '0')}_text_document.bin (2048 samples, 4096 tokens each)`;
    } else if (r < 0.9) {
      text = `/usr/local/lib/python3.10/dist-packages/torch/utils/checkpoint.py:${90 + (step % 9)}: UserWarning: torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. In version 2.5 we will raise an exception if use_reentrant is not passed.`;
    } else {
      text = `[2026-03-01 ${hh},123] [INFO] [logging.py:96:log_dist] [Rank ${rank}] step=${step}, skipped=0, lr=[0.000199${rank}], mom=[(0.9, 0.95)], samples/sec=${(900 + rank).toFixed(1)}, tokens/sec=1843200.0`;
    }
    lines.push({
      stream: `pod-${rank >> 3}/${rank & 7}`,
      rank,
      timestamp: t0 + Math.floor(i / 16) * 1000,
      text,
    });
  }
  // as the logs Lambda gets them: flat strings out of JSON.parse (not concatenation ropes)
  return JSON.parse(JSON.stringify(lines)) as LogLine[];
}

/** HyperPod's way: each rule's regex anchored-matched on each line, group 1 parsed for metric rules. */
function baseline(rules: LogRule[], lines: LogLine[]): number {
  const compiled = rules.map((r) => ({
    re: new RegExp(`^(?:${r.logPattern})`, 's'),
    metric: r.operator !== undefined,
  }));
  let matches = 0;
  for (const line of lines) {
    for (const r of compiled) {
      const m = r.re.exec(line.text);
      if (m) {
        matches++;
        if (r.metric && m[1] !== undefined) matches += Number.isNaN(Number.parseFloat(m[1])) ? 0 : 0;
      }
    }
  }
  return matches;
}

export function ours(rules: LogRule[], lines: LogLine[]): { findings: number; values: number } {
  const c = compileRules(rules);
  let state = initialRuleState(c, 1, lines[0]?.timestamp ?? 0);
  let findings = 0;
  let values = 0;
  for (let i = 0; i < lines.length; i += BATCH) {
    const batch = lines.slice(i, i + BATCH);
    const out = evaluateLines(c, state, batch, (batch.at(-1) as LogLine).timestamp);
    state = out.state;
    findings += out.findings.length;
    values += out.values.length;
  }
  return { findings, values };
}

/**
 * CPU time of `f` (user + system, this process): the machine is shared, so wall time measures the
 * neighbours too; CPU time is what one core spends on it.
 */
const time = <T>(f: () => T): { ms: number; result: T } => {
  const start = process.cpuUsage();
  const result = f();
  const used = process.cpuUsage(start);
  return { ms: (used.user + used.system) / 1000, result };
};

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Runs the benchmark and prints its table. */
export default async function bench(): Promise<void> {
  const rules = [...loadPresetRules(PRESET_NAMES), ...USER_RULES];
  const lines = corpus(LINES);
  const bytes = lines.reduce((n, l) => n + l.text.length, 0);
  console.log(
    `${rules.length} rules (${rules.length - USER_RULES.length} preset + ${USER_RULES.length} user) over ${fmt(LINES)} lines, ${(bytes / LINES).toFixed(0)} bytes/line, batches of ${BATCH}`,
  );

  ours(rules, lines.slice(0, 20_000)); // warm up the JIT
  baseline(rules, lines.slice(0, 20_000));
  const runs = [1, 2, 3].map(() => ({
    engine: time(() => ours(rules, lines)),
    base: time(() => baseline(rules, lines)),
  }));
  const best = (k: 'engine' | 'base') => Math.min(...runs.map((r) => r[k].ms));
  const engineMs = best('engine');
  const baseMs = best('base');
  const { findings, values } = runs[0]?.engine.result ?? { findings: 0, values: 0 };
  console.log('| run | CPU ms (best of 3) | lines/s (one core) | notes |');
  console.log('|---|---:|---:|---|');
  console.log(
    `| engine (prefilter + strategies, full semantics) | ${fmt(engineMs)} | ${fmt((LINES / engineMs) * 1000)} | ${findings} findings, ${fmt(values)} metric values |`,
  );
  console.log(
    `| baseline (HyperPod: anchored match per rule per line, naive V8) | ${fmt(baseMs)} | ${fmt((LINES / baseMs) * 1000)} | matching only, no state |`,
  );
  console.log(
    `speed-up: ${(baseMs / engineMs).toFixed(1)}x (target >= 5x); engine ${((LINES / engineMs) * 1000) >= 1_000_000 ? 'meets' : 'misses'} 1,000,000 lines/s`,
  );

  const hostile = compilePattern('(a+)+$');
  console.log(
    `\nhostile pattern (a+)+$ (engine ${hostile.engine}, strategy ${hostile.strategy}), non-matching lines:`,
  );
  console.log('| line length | lines | CPU ms | µs/line | µs/char |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const len of [2_500, 5_000, 10_000]) {
    const text = `${'a'.repeat(len)}!`;
    hostile.match(text); // compile + warm up
    const n = 50;
    const { ms } = time(() => {
      for (let i = 0; i < n; i++)
        if (hostile.match(text) !== null) throw new Error('hostile pattern matched');
    });
    console.log(
      `| ${fmt(len)} | ${n} | ${ms.toFixed(0)} | ${((ms * 1000) / n).toFixed(0)} | ${((ms * 1000) / n / len).toFixed(3)} |`,
    );
  }
}
