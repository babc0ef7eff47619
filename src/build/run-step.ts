/**
 * build/run-step: RUN. Keys the step on the command (heredoc bodies included, build/run-heredoc), the
 * variables it can see, the user, workdir, network and mounts (build/run-mounts: options and bound context
 * files; secrets and ssh agents by id only), then runs it in the sandbox at the isolation level the machine
 * allows, with the parent layers as lowerdirs and the changes directory as the upperdir, and clears the
 * mount points the sandbox made from that directory before it becomes the layer.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { StepInputs } from '../cache/key.js';
import { type RunInstruction, runEnvironment, type StageVariables } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { resolveUser } from '../run/user.js';
import { runSandbox } from '../sandbox/helper.js';
import { buildIdMaps } from '../sandbox/idmap.js';
import { chooseIsolation } from '../sandbox/isolation.js';
import { probeEnvironment } from '../sandbox/probe.js';
import type { IdMaps, SandboxMount, SandboxSpec } from '../sandbox/spec.js';
import { historyText } from './config.js';
import { cachedLayerStep, type StepOutcome, where } from './layer-step.js';
import { layerDirs, lookup, readImageText } from './lower.js';
import { PIPES_DIR, runScript } from './run-heredoc.js';
import { planRunMounts, prepareRunMounts, removeStubs, SANDBOX_MOUNT_POINTS } from './run-mounts.js';
import type { BuildContext, StageState } from './types.js';
import { mapUpperOwners } from './upper-owners.js';

export async function runStep(
  ctx: BuildContext,
  state: StageState,
  instruction: RunInstruction,
  variables: StageVariables,
): Promise<StepOutcome> {
  const o = ctx.options;
  const subject = where(ctx, instruction.location.line);
  const c = state.config.config;
  const script = runScript(instruction.command, c.Shell);
  const args = script.args;
  const env = runEnvironment(ctx.ir, variables);
  const visible = [...env.env].map(([k, v]) => `${k}=${v}`);
  const cwd = c.WorkingDir || '/';
  const plan = await planRunMounts(ctx, instruction, { workdir: cwd, subject });
  const inputs: StepInputs = {
    parent: state.key,
    // A shebang heredoc runs a mounted file: its content is part of the command.
    instruction: JSON.stringify(script.pipe ? { args, pipe: script.pipe } : args),
    env: visible,
    ...(Object.keys(plan.files).length > 0 ? { files: plan.files } : {}),
    options: {
      user: c.User ?? '',
      workdir: c.WorkingDir ?? '/',
      network: instruction.network,
      mounts: plan.key,
      compression: o.compression ?? 'gzip',
      timestamp: String(o.timestamp ?? ''),
    },
  };
  // History shows the command as run, as BuildKit's does (a heredoc's body, not `<<EOF`).
  const history = historyText(
    instruction.command.files.length > 0
      ? { ...instruction, command: { form: 'exec', args, files: [] } }
      : instruction,
    c.Shell,
  );
  return cachedLayerStep(ctx, state, inputs, history, async (changes) => {
    // Layers imported lazily from --cache-from are fetched only when a step has to run on them.
    await ctx.ensureLayers(state.layers);
    const dirs = await layerDirs(o.store, state.layers);
    const user = resolveUser(c.User ?? '', {
      passwd: await readImageText(dirs, '/etc/passwd'),
      group: await readImageText(dirs, '/etc/group'),
    });
    if (!(await lookup(dirs, cwd))) await mkdir(join(changes, cwd), { recursive: true, mode: 0o755 });
    const base = join(changes, '..');
    const report = await probeEnvironment({
      scratchDir: join(base, 'probe'),
      cacheFile: join(o.store.root, 'probe-cache.json'),
    });
    const network = instruction.network === 'none' ? 'none' : 'host';
    const choice = chooseIsolation(report, o.isolation ?? 'auto', { network });
    const paths = { work: join(base, 'work'), target: join(base, 'rootfs'), scratch: join(base, 'helper') };
    for (const d of Object.values(paths)) await mkdir(d);
    let idMaps: IdMaps | undefined;
    if (choice.level === 'rootless') {
      const ranges = report.newuidmap ? report : { subuid: [], subgid: [] };
      idMaps = buildIdMaps({
        uid: report.uid,
        gid: report.gid,
        subuid: ranges.subuid,
        subgid: ranges.subgid,
      }).maps;
    }
    if (choice.level === 'none' && (plan.mounts.length > 0 || script.pipe)) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        'RUN mounts need a mount namespace, which --isolation none lacks',
        {
          subject,
        },
      );
    }
    const pipe = script.pipe ? [await pipeMount(base, script.pipe)] : [];
    const prepared = await prepareRunMounts(ctx, plan, {
      base,
      helperScratch: paths.scratch,
      ...(idMaps ? { idMaps } : {}),
      subject,
    });
    const mounts = [...pipe, ...prepared.mounts];
    const sshAuthSock =
      plan.sshAuthSock && !env.env.has('SSH_AUTH_SOCK') ? [`SSH_AUTH_SOCK=${plan.sshAuthSock}`] : [];
    const spec: SandboxSpec = {
      isolation: choice.level,
      rootfs: { mode: choice.rootfs, layers: dirs, upper: changes, work: paths.work, target: paths.target },
      hostname: randomBytes(6).toString('hex'),
      network,
      mounts,
      process: {
        args,
        env: [
          `PATH=${env.env.get('PATH') ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
          ...visible.filter((e) => !e.startsWith('PATH=')),
          ...[...env.proxy].map(([k, v]) => `${k}=${v}`),
          ...sshAuthSock,
          ...prepared.env,
        ],
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
      },
      scratch: paths.scratch,
      ...(idMaps ? { idMaps } : {}),
    };
    let result: Awaited<ReturnType<typeof runSandbox>>;
    try {
      result = await runSandbox(spec, { logger: o.logger });
    } finally {
      await prepared.release();
    }
    if (result.exitCode !== 0) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `RUN ${args.join(' ')} failed with exit status ${result.exitCode}${result.error ? `: ${result.error}` : ''}`,
        { subject },
      );
    }
    // Mount points the sandbox had to create are not part of the step's output.
    await removeStubs(changes, [...SANDBOX_MOUNT_POINTS, ...mounts.map((m) => m.destination)]);
    if (idMaps) await mapUpperOwners(changes, idMaps, join(base, 'owners'), subject);
  });
}

/** The read-only directory holding a shebang heredoc's file (mode 0755), mounted at /dev/pipes. */
async function pipeMount(base: string, pipe: { name: string; content: string }): Promise<SandboxMount> {
  const dir = join(base, 'pipes');
  await mkdir(dir, { mode: 0o755 });
  const file = join(dir, posix.basename(pipe.name));
  await writeFile(file, pipe.content);
  await chmod(file, 0o755);
  return { source: dir, destination: PIPES_DIR, readonly: true };
}
