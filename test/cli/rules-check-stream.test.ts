/**
 * `rules check` on a kubectl log reads, parses and evaluates the file a block at a time
 * (cli/commands/rules-check.ts `checkFile`); these tests hold it to the whole-file result: the real CLI on
 * a log of several read blocks — a UTF-8 character and a `\r\n` cut by block boundaries, lines across
 * them, more lines than one engine call takes — prints exactly the findings of the whole file parsed at
 * once (`parseLog`) and checked at once (`checkLog`). `LogCheck` gives the same findings for any split of
 * the lines into `add` calls.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLog, LogCheck } from '../../cli/commands/rules-check.ts';
import { READ_CHUNK_BYTES } from '../../cli/io.ts';
import { parseJobManifest } from '../../core/spec/parse.ts';
import { parseLog } from '../../rules/log-formats.ts';
import { effectiveRules } from '../../rules/presets/index.ts';
import { trainkeeper } from './run.ts';

const dir = mkdtempSync(join(tmpdir(), 'tk-rules-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MANIFEST = `apiVersion: sagemaker.amazonaws.com/v1
kind: HyperPodPyTorchJob
metadata:
  name: gpt
spec:
  nprocPerNode: "8"
  runPolicy:
    logMonitoringConfiguration:
      - name: TrainingHang
        logPattern: '.*iteration\\s+(\\d+)/'
        expectedStartCutOffInSeconds: 120
        expectedRecurringFrequencyInSeconds: 60
      - name: LossSpike
        logPattern: '.*lm loss: (\\d+(?:\\.\\d+)?)'
        metricThreshold: 20
        operator: gt
        metricEvaluationDataPoints: 2
  replicaSpecs:
    - name: pods
      replicas: 2
      template:
        spec:
          containers:
            - name: pytorch
              image: trainer:1
`;

const T0 = Date.UTC(2026, 2, 1, 10);
const stamp = (ms: number) =>
  `${new Date(ms).toISOString().slice(0, 19)}.${String(ms % 1000).padStart(3, '0')}000000Z`;

/**
 * A training log of ~4 read blocks and ~25,000 lines: iteration lines with a loss (,
 * rank 2's loss over the threshold twice), progress bars with multi-byte glyphs, a silence of 90 s (a hang), NCCL watchdog faults, unstamped
 * continuation lines, every third line ending in `\r\n`. Filler lines put a 3-byte `█` across the first
 * block boundary and a `\r\n` across the second.
 */
function trainingLog(): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const add = (text: string, eol: string) => {
    const b = Buffer.from(`${text}${eol}`);
    parts.push(b);
    size += b.length;
  };
  /** Pads with one line so that the next line's byte `offset` lands at file offset `at`. */
  const padSoThat = (offset: number, at: number, t: number) => {
    const head = `${stamp(t)} filler `;
    add(`${head}${'.'.repeat(at - size - offset - head.length - 1)}`, '\n');
  };
  let t = T0;
  for (let i = 0; i < 25_000; i++) {
    t += i === 12_345 ? 90_000 : 7;
    const rank = i % 8;
    const eol = i % 3 === 0 ? '\r\n' : '\n';
    if (size > READ_CHUNK_BYTES - 400 && size < READ_CHUNK_BYTES - 300) {
      const bar = `${stamp(t)} [default${rank}]:Epoch 0: 5%|`;
      padSoThat(Buffer.byteLength(bar) + 1, READ_CHUNK_BYTES, t); // `█`'s second byte starts block 2
      add(`${bar}██▍       | 5/100`, eol);
      continue;
    }
    if (size > 2 * READ_CHUNK_BYTES - 400 && size < 2 * READ_CHUNK_BYTES - 300) {
      const line = `${stamp(t)} [default${rank}]:crlf across blocks`;
      padSoThat(Buffer.byteLength(line) + 1, 2 * READ_CHUNK_BYTES, t); // the `\n` starts block 3
      add(line, '\r\n');
      continue;
    }
    if (i % 10 === 0) {
      const spike = (i > 5_000 && i < 5_200) || (i > 20_000 && i < 20_200);
      const loss = spike && rank === 2 ? 25.5 : 2.25;
      add(`${stamp(t)} [default${rank}]: iteration ${i}/ 25000 | lm loss: ${loss}`, eol);
    } else if (i % 10 === 3) {
      add(`${stamp(t)} [default${rank}]:Epoch 0: ${i % 100}%|██▍       | ${i}/25000 [00:01<00:09] ✓`, eol);
    } else if (i === 7_777 || i === 18_888) {
      add(
        `${stamp(t)} [default${rank}]:[E ProcessGroupNCCL.cpp:1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=${i})`,
        eol,
      );
    } else if (i % 97 === 0) {
      add(`  continued without a stamp ${i} é`, eol);
    } else {
      add(`${stamp(t)} [default${rank}]:NCCL INFO Channel 0${rank}/0 : step ${i}`, eol);
    }
  }
  return Buffer.concat(parts);
}

describe('rules check on a kubectl log read a block at a time', () => {
  it('prints exactly the findings of the whole file parsed and checked at once', async () => {
    const bytes = trainingLog();
    expect(bytes.length).toBeGreaterThan(3 * READ_CHUNK_BYTES);
    expect(bytes.subarray(READ_CHUNK_BYTES - 1, READ_CHUNK_BYTES + 2).toString()).toBe('█');
    expect(bytes.subarray(2 * READ_CHUNK_BYTES - 1, 2 * READ_CHUNK_BYTES + 1).toString()).toBe('\r\n');
    const log = join(dir, 'pod.log');
    const job = join(dir, 'job.yaml');
    writeFileSync(log, bytes);
    writeFileSync(job, MANIFEST);

    const parsed = parseJobManifest(MANIFEST);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const whole = parseLog(bytes, 'pod.log');
    const expected = checkLog(effectiveRules(parsed.spec), whole.lines, whole.firstTimestamp as number);
    expect(expected.map((f) => f.verdict).sort()).toEqual(['FAULTED', 'FAULTED', 'HANGING', 'SLOW', 'SLOW']);

    const json = await trainkeeper(['rules', 'check', '--job', job, '--log', log, '-o', 'json']);
    expect(json.code).toBe(3);
    expect(json.stdout).toBe(expected.map((f) => `${JSON.stringify(f)}\n`).join(''));
    const text = await trainkeeper(['rules', 'check', '--job', job, '--log', log]);
    expect(text.stderr).toBe(
      `warning: ${whole.unstamped} line(s) before the first timestamp skipped\n`.repeat(
        whole.unstamped > 0 ? 1 : 0,
      ) + `5 finding(s); ${effectiveRules(parsed.spec).length} rule(s) over ${whole.lines.length} line(s)\n`,
    );
  });

  it('LogCheck finds the same for any split of the lines into add calls', () => {
    const parsed = parseJobManifest(MANIFEST);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const rules = effectiveRules(parsed.spec);
    const { lines, firstTimestamp } = parseLog(trainingLog(), 'pod.log');
    const start = firstTimestamp as number;
    const expected = checkLog(rules, lines, start);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: lines.length }), { maxLength: 8 }), (cuts) => {
        const check = new LogCheck(rules, start);
        let from = 0;
        for (const cut of [...cuts, lines.length].sort((a, b) => a - b)) {
          check.add(lines.slice(from, cut));
          from = cut;
        }
        expect(check.finish()).toEqual(expected);
      }),
      { numRuns: 10 },
    );
  });
});
