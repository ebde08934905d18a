/**
 * Runs the real stacks (stacks/app.ts) offline: SST's components from `.sst/platform` (written by
 * `sst install --stage ci`, run here when missing) under Pulumi mocks, with the globals SST's CLI injects and
 * a small stub of SST's local RPC server. What SST's components call on that server (read from
 * .sst/platform/src): `Runtime.Build` (bundle a function: done for real with esbuild, as SST does) and
 * `Provider.Aws.Bootstrap` (the asset bucket's name). Any other method is recorded and refused.
 *
 * This relies on SST internals, which is why `sst` is pinned exactly (4.17.1).
 */

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, stop as stopEsbuild } from 'esbuild';
import type { StageConfig } from '../../stacks/config.ts';

/** Repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PLATFORM = path.join(ROOT, '.sst', 'platform');

/**
 * Property bags as the Pulumi engine hands them over (untyped JSON; each test reads the fields it checks).
 */
// biome-ignore lint/suspicious/noExplicitAny: engine inputs and outputs are untyped JSON by nature.
export type Props = Record<string, any>;

/** Fictitious account of the mocked caller. */
export const ACCOUNT = '123456789012';

/** One resource registered with the mocked Pulumi engine. */
export interface MockResource {
  type: string;
  name: string;
  inputs: Props;
  state: Props;
}

/** Everything a run produced. */
export interface StackRun {
  resources: MockResource[];
  outputs: Record<string, unknown>;
  rpcCalls: { method: string; args: Props }[];
  /** What `sst.config.ts`'s `app()` returned (runs through `sst.config.ts` only). */
  app?: Props;
  /** Handler bundles esbuild wrote for `Runtime.Build`, by function id (`file` = the bundled module). */
  bundles: Record<string, { out: string; file: string; handler: string; bytes: number }>;
  /** Removes the work directory (bundles, zips); call in `afterAll`. */
  dispose(): void;
}

/**
 * Runs `sst install --stage ci` offline unless `.sst/platform` already holds SST 4.17.1. Test files run in
 * parallel: a lock directory (atomic `mkdir`) lets one install while the others wait for it.
 */
export async function ensureSstPlatform(): Promise<void> {
  const version = path.join(PLATFORM, 'version');
  const ready = () => fs.existsSync(version) && fs.readFileSync(version, 'utf8').trim() === '4.17.1';
  if (ready()) return;
  // Inside .sst/ (git-ignored), so a lock left by a killed run never shows up in the tree.
  fs.mkdirSync(path.join(ROOT, '.sst'), { recursive: true });
  const lock = path.join(ROOT, '.sst', 'trainkeeper-install.lock');
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (ready()) return;
      await sleep(500);
    }
  }
  try {
    if (!ready()) installSst();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function installSst(): void {
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'sst'), ['install', '--stage', 'ci'], {
    cwd: ROOT,
    stdio: 'inherit',
    timeout: 120_000,
    env: {
      ...process.env,
      SST_SKIP_DEPENDENCY_CHECK: '1',
      SST_TELEMETRY_DISABLED: '1',
      SST_BUN_PATH: path.join(ROOT, 'node_modules', 'bun', 'bin', 'bun.exe'),
    },
  });
}

function arnFor(type: string, name: string, region: string): string {
  const service = type.split(':')[1]?.split('/')[0] ?? 'unknown';
  return `arn:aws:${service}:${region}:${ACCOUNT}:${name}`;
}

/** The state a mocked resource reports back: its inputs plus the computed attributes the stacks read. */
function mockState(type: string, name: string, inputs: Props, region: string) {
  const state: Props = { ...inputs, arn: inputs.arn ?? arnFor(type, name, region) };
  state.name = inputs.name ?? name;
  if (type === 'aws:amp/workspace:Workspace') {
    state.prometheusEndpoint = `https://aps-workspaces.${region}.amazonaws.com/workspaces/ws-${name.toLowerCase()}/`;
    state.arn = `arn:aws:aps:${region}:${ACCOUNT}:workspace/ws-${name.toLowerCase()}`;
  }
  if (type === 'aws:apigatewayv2/api:Api') {
    state.apiEndpoint = `https://${name.toLowerCase()}.execute-api.${region}.amazonaws.com`;
    state.executionArn = `arn:aws:execute-api:${region}:${ACCOUNT}:${name.toLowerCase()}`;
  }
  if (type === 'aws:sqs/queue:Queue') {
    state.arn = `arn:aws:sqs:${region}:${ACCOUNT}:${state.name}`;
    state.url = `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${state.name}`;
  }
  if (type === 'aws:dynamodb/table:Table')
    state.arn = `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${state.name}`;
  if (type === 'aws:iam/role:Role') state.arn = `arn:aws:iam::${ACCOUNT}:role/${state.name}`;
  if (type === 'aws:lambda/function:Function') {
    state.arn = `arn:aws:lambda:${region}:${ACCOUNT}:function:${state.name}`;
    state.invokeArn = `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${state.arn}/invocations`;
  }
  if (type === 'aws:cloudwatch/eventBus:EventBus')
    state.arn = `arn:aws:events:${region}:${ACCOUNT}:event-bus/${state.name}`;
  if (type === 'aws:cloudwatch/eventRule:EventRule')
    state.arn = `arn:aws:events:${region}:${ACCOUNT}:rule/${state.name}`;
  if (type === 'aws:cloudwatch/logGroup:LogGroup')
    state.arn = `arn:aws:logs:${region}:${ACCOUNT}:log-group:${state.name}`;
  if (type === 'aws:kinesis/stream:Stream')
    state.arn = `arn:aws:kinesis:${region}:${ACCOUNT}:stream/${state.name}`;
  if (type === 'aws:sns/topic:Topic') state.arn = `arn:aws:sns:${region}:${ACCOUNT}:${state.name}`;
  return state;
}

async function startRpcStub(
  work: string,
  calls: StackRun['rpcCalls'],
  bundles: StackRun['bundles'],
  pending: { count: number },
) {
  const methods: Record<string, (args: Props) => Promise<unknown>> = {
    'Provider.Aws.Bootstrap': async (args) => ({
      asset: `sst-asset-${args.region}`,
      assetEcrRegistryId: ACCOUNT,
      assetEcrUrl: `${ACCOUNT}.dkr.ecr.${args.region}.amazonaws.com/sst-asset`,
      state: `sst-state-${args.region}`,
      appsyncHttp: '',
      appsyncRealtime: '',
    }),
    // SST bundles a Node.js handler with esbuild into one ESM file; this does the same for real, so a
    // handler that does not bundle fails the test.
    'Runtime.Build': async (args) => {
      const handler: string = args.handler;
      const file = handler.slice(0, handler.lastIndexOf('.'));
      const out = path.join(work, 'artifacts', `${args.functionID}-src`);
      const result = await build({
        entryPoints: [path.join(ROOT, `${file}.ts`)],
        outfile: path.join(out, `${file}.mjs`),
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node22',
        logLevel: 'silent',
        banner: {
          js: "import { createRequire as topLevelCreateRequire } from 'module';const require = topLevelCreateRequire(import.meta.url);",
        },
      });
      const bytes = fs.statSync(path.join(out, `${file}.mjs`)).size;
      bundles[args.functionID] = { out, file: path.join(out, `${file}.mjs`), handler, bytes };
      return { handler, out, errors: result.errors.map((e) => e.text), sourcemaps: [] };
    },
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', async () => {
      const { method, params } = JSON.parse(body) as { method: string; params: Props[] };
      const args = params[0] ?? {};
      calls.push({ method, args });
      pending.count += 1;
      res.on('close', () => {
        pending.count -= 1;
      });
      const fn = methods[method];
      res.setHeader('content-type', 'application/json');
      if (!fn) {
        res.end(JSON.stringify({ error: `rpc: can't find method ${method}` }));
        return;
      }
      try {
        res.end(JSON.stringify({ result: await fn(args) }));
      } catch (err) {
        res.end(JSON.stringify({ error: String(err) }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * What `aws.iam.getPolicyDocument` renders for the statements SST passes (effect, principals, actions,
 * resources, conditions; lists kept as lists): the provider does this locally, so the mock does the same translation.
 */
function policyJson(inputs: { statements?: Props[] }): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: (inputs.statements ?? []).map((st) => ({
      Effect: st.effect ?? 'Allow',
      ...(st.principals
        ? {
            Principal: Object.fromEntries(
              (st.principals as Props[]).map((p) => [
                p.type,
                p.identifiers.length === 1 ? p.identifiers[0] : p.identifiers,
              ]),
            ),
          }
        : {}),
      Action: st.actions,
      ...(st.resources ? { Resource: st.resources } : {}),
      ...(st.conditions ? { Condition: st.conditions } : {}),
    })),
  });
}

async function settled<T>(value: unknown): Promise<T> {
  const pulumi = platformRequire('@pulumi/pulumi');
  return new Promise<T>((resolve) => pulumi.output(value).apply((v: T) => resolve(v)));
}

const platformRequire = createRequire(path.join(PLATFORM, 'package.json'));

/**
 * Runs the stage under Pulumi mocks in this process (call once per test file: Pulumi's runtime and SST's
 * globals are process-wide) and returns every resource with its inputs once all have settled. `via:
 * 'sst.config'` goes through `sst.config.ts` (`app()` then `run()`, which reads the stage configuration from
 * `config.stage` and `process.env` itself); `via: 'app'` calls `trainkeeper(config)` directly.
 */
export async function runStacks(config: StageConfig, via: 'app' | 'sst.config' = 'app'): Promise<StackRun> {
  await ensureSstPlatform();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trainkeeper-sst-'));
  const run: StackRun = {
    resources: [],
    outputs: {},
    rpcCalls: [],
    bundles: {},
    dispose: () => fs.rmSync(work, { recursive: true, force: true }),
  };
  const pending = { count: 0 };
  const server = await startRpcStub(work, run.rpcCalls, run.bundles, pending);
  try {
    process.env.SST_SERVER = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const pulumi = platformRequire('@pulumi/pulumi');
    await pulumi.runtime.setMocks(
      {
        newResource(args: { type: string; name: string; inputs: Props }) {
          const state = mockState(args.type, args.name, args.inputs, config.region);
          run.resources.push({ type: args.type, name: args.name, inputs: args.inputs, state });
          return { id: `${args.name}-id`, state };
        },
        call(args: { token: string; inputs: Props }) {
          switch (args.token) {
            case 'aws:index/getCallerIdentity:getCallerIdentity':
              return {
                accountId: ACCOUNT,
                arn: `arn:aws:iam::${ACCOUNT}:user/ci`,
                userId: 'AIDCI',
                id: ACCOUNT,
              };
            case 'aws:index/getPartition:getPartition':
              return { partition: 'aws', dnsSuffix: 'amazonaws.com', id: 'aws' };
            case 'aws:iam/getPolicyDocument:getPolicyDocument':
              // The provider echoes its inputs (SST reads `statements` back) and renders `json`.
              return { ...args.inputs, json: policyJson(args.inputs), id: 'policy' };
            case 'aws:index/getRegion:getRegion':
              return { name: config.region, region: config.region, id: config.region };
            default:
              return args.inputs;
          }
        },
      },
      'trainkeeper',
      config.stage,
      false,
    );
    const g = globalThis as Record<string, unknown>;
    g.$app = { name: 'trainkeeper', stage: config.stage, removal: 'remove', providers: {}, protect: false };
    g.$dev = false;
    g.$cli = {
      command: 'deploy',
      rpc: process.env.SST_SERVER,
      paths: { home: work, root: ROOT, work, platform: PLATFORM },
      state: { version: {} },
    };
    const shim = await import(pathToFileURL(path.join(PLATFORM, 'src', 'components', 'component.ts')).href);
    Object.assign(g, {
      $util: pulumi,
      $output: pulumi.output,
      $apply: pulumi.apply,
      $resolve: pulumi.all,
      $interpolate: pulumi.interpolate,
      $concat: pulumi.concat,
      $jsonParse: pulumi.jsonParse,
      $jsonStringify: pulumi.jsonStringify,
      $transform: shim.$transform,
      $asset: shim.$asset,
      $secrets: {},
      aws: platformRequire('@pulumi/aws'),
      sst: {
        aws: await import(pathToFileURL(path.join(PLATFORM, 'src', 'components', 'aws', 'index.ts')).href),
      },
    });
    if (via === 'sst.config') {
      g.$config = (c: Props) => c;
      const sstConfig = (await import('../../sst.config.ts')).default as unknown as {
        app(input: { stage: string }): Promise<Props>;
        run(): Promise<Props>;
      };
      run.app = await sstConfig.app({ stage: config.stage });
      run.outputs = await settled<Props>(await sstConfig.run());
    } else {
      const { trainkeeper } = await import('../../stacks/app.ts');
      run.outputs = await settled<Props>(trainkeeper(config));
    }
    // Components create children inside `apply` callbacks, some after an RPC (bundling) or a zip: wait
    // until Pulumi has no RPC outstanding, no stub call is in flight, every `sst.aws.Function` has its
    // Lambda, and registrations stop arriving.
    const { waitForRPCs } = platformRequire('@pulumi/pulumi/runtime/settings.js');
    const deadline = Date.now() + 120_000;
    let seen = -1;
    for (;;) {
      await waitForRPCs();
      const components = ofType(run, 'sst:aws:Function').length;
      const lambdas = ofType(run, 'aws:lambda/function:Function').length;
      if (seen === run.resources.length && pending.count === 0 && lambdas === components) break;
      if (Date.now() > deadline) throw new Error(`stacks did not settle: ${lambdas}/${components} Lambdas`);
      seen = run.resources.length;
      await sleep(250);
    }
    return run;
  } catch (err) {
    run.dispose();
    throw err;
  } finally {
    await stopEsbuild();
    server.close();
  }
}

/** Resources of one type (`aws:iam/rolePolicy:RolePolicy`, …). */
export function ofType(run: StackRun, type: string): MockResource[] {
  return run.resources.filter((r) => r.type === type);
}
