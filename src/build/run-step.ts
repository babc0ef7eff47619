/**
 * build/run-step: RUN. Keys the step on the command, the variables it can see, the user, workdir, network and
 * mounts (secrets by id, never their values), then runs it in the sandbox at the isolation level the machine
 * allows, with the parent layers as lowerdirs and the changes directory as the upperdir.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { StepInputs } from '../cache/key.js';
import { type RunInstruction, runEnvironment, type StageVariables } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import { resolveUser } from '../run/user.js';
import { runSandbox } from '../sandbox/helper.js';
import { buildIdMaps } from '../sandbox/idmap.js';
import { chooseIsolation } from '../sandbox/isolation.js';
import { probeEnvironment } from '../sandbox/probe.js';
import type { SandboxMount, SandboxSpec } from '../sandbox/spec.js';
import { commandArgs, historyText } from './config.js';
import { cachedLayerStep, type StepOutcome, where } from './layer-step.js';
import { layerDirs, lookup, readImageText } from './lower.js';
import type { BuildContext, StageState } from './types.js';
import { mapUpperOwners } from './upper-owners.js';

/** The text of a RUN's mounts for its key: secrets by id and target only, never their values. */
function mountKey(instruction: RunInstruction): string {
  return JSON.stringify(
    instruction.mounts.map((m) => {
      const mount = m.mount;
      if (!mount) return m.text;
      return { type: mount.type, target: mount.target, id: 'id' in mount ? mount.id : undefined };
    }),
  );
}

export async function runStep(
  ctx: BuildContext,
  state: StageState,
  instruction: RunInstruction,
  variables: StageVariables,
): Promise<StepOutcome> {
  const o = ctx.options;
  const subject = where(ctx, instruction.location.line);
  if (instruction.command.files.length > 0) {
    throw new GantryError('INVALID_ARGUMENT', 'RUN heredocs are not supported yet', { subject });
  }
  const c = state.config.config;
  const args = commandArgs(instruction.command, c.Shell);
  const env = runEnvironment(ctx.ir, variables);
  const visible = [...env.env].map(([k, v]) => `${k}=${v}`);
  const inputs: StepInputs = {
    parent: state.key,
    instruction: JSON.stringify(args),
    env: visible,
    options: {
      user: c.User ?? '',
      workdir: c.WorkingDir ?? '/',
      network: instruction.network,
      mounts: mountKey(instruction),
      compression: o.compression ?? 'gzip',
      timestamp: String(o.timestamp ?? ''),
    },
  };
  return cachedLayerStep(ctx, state, inputs, historyText(instruction, c.Shell), async (changes) => {
    const dirs = await layerDirs(o.store, state.layers);
    const user = resolveUser(c.User ?? '', {
      passwd: await readImageText(dirs, '/etc/passwd'),
      group: await readImageText(dirs, '/etc/group'),
    });
    const cwd = c.WorkingDir || '/';
    if (!(await lookup(dirs, cwd))) await mkdir(join(changes, cwd), { recursive: true, mode: 0o755 });
    const base = join(changes, '..');
    const mounts = await runMounts(ctx, instruction, base, subject);
    const report = await probeEnvironment({
      scratchDir: join(base, 'probe'),
      cacheFile: join(o.store.root, 'probe-cache.json'),
    });
    const network = instruction.network === 'none' ? 'none' : 'host';
    const choice = chooseIsolation(report, o.isolation ?? 'auto', { network });
    const paths = { work: join(base, 'work'), target: join(base, 'rootfs'), scratch: join(base, 'helper') };
    for (const d of Object.values(paths)) await mkdir(d);
    const spec: SandboxSpec = {
      isolation: choice.level,
      rootfs: { mode: choice.rootfs, layers: dirs, upper: changes, work: paths.work, target: paths.target },
      hostname: randomBytes(6).toString('hex'),
      network,
      mounts: mounts.map((m) => m.mount),
      process: {
        args,
        env: [
          `PATH=${env.env.get('PATH') ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
          ...visible.filter((e) => !e.startsWith('PATH=')),
          ...[...env.proxy].map(([k, v]) => `${k}=${v}`),
        ],
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
      },
      scratch: paths.scratch,
    };
    if (choice.level === 'rootless') {
      const ranges = report.newuidmap ? report : { subuid: [], subgid: [] };
      spec.idMaps = buildIdMaps({
        uid: report.uid,
        gid: report.gid,
        subuid: ranges.subuid,
        subgid: ranges.subgid,
      }).maps;
    }
    const result = await runSandbox(spec, { logger: o.logger });
    if (result.exitCode !== 0) {
      throw new GantryError(
        'INVALID_ARGUMENT',
        `RUN ${args.join(' ')} failed with exit status ${result.exitCode}${result.error ? `: ${result.error}` : ''}`,
        { subject },
      );
    }
    // Mount points the sandbox had to create are not part of the step's output.
    for (const m of mounts) if (m.stub) await removeStub(changes, m.mount.destination);
    if (spec.idMaps) await mapUpperOwners(changes, spec.idMaps, join(base, 'owners'), subject);
  });
}

/** Removes a mount point (and the empty parents) the sandbox created in the upper directory. */
async function removeStub(upper: string, destination: string): Promise<void> {
  await rm(join(upper, destination), { recursive: true, force: true });
  let dir = posix.dirname(destination);
  while (dir !== '/') {
    const removed = await rmdir(join(upper, dir)).then(
      () => true,
      () => false,
    );
    if (!removed) break;
    dir = posix.dirname(dir);
  }
}

async function runMounts(
  ctx: BuildContext,
  instruction: RunInstruction,
  base: string,
  subject: string,
): Promise<{ mount: SandboxMount; stub: boolean }[]> {
  const out: { mount: SandboxMount; stub: boolean }[] = [];
  for (const flag of instruction.mounts) {
    const m = flag.mount;
    if (!m) continue;
    if (m.type === 'secret') {
      const id = m.id ?? posix.basename(m.target ?? '');
      const source = ctx.options.secrets?.[id];
      if (!source) {
        if (m.required)
          throw new GantryError('INVALID_ARGUMENT', `secret ${id} was not given (--secret id=${id},...)`, {
            subject,
          });
        continue;
      }
      let file: string;
      if ('file' in source) file = source.file;
      else {
        file = join(base, `secret-${out.length}`);
        await writeFile(file, process.env[source.env] ?? '', { mode: 0o600 });
      }
      out.push({
        mount: { source: file, destination: m.target ?? `/run/secrets/${id}`, readonly: true },
        stub: true,
      });
    } else if (m.type === 'cache') {
      const target = m.target as string;
      const id = m.id ?? target;
      const dir = join(
        ctx.options.store.root,
        'cache',
        'mounts',
        Buffer.from(id).toString('hex').slice(0, 200),
      );
      await mkdir(dir, { recursive: true, mode: 0o755 });
      out.push({ mount: { source: dir, destination: target, readonly: m.readOnly }, stub: true });
    } else {
      throw new GantryError('INVALID_ARGUMENT', `RUN --mount=type=${m.type} is not supported yet`, {
        subject,
      });
    }
  }
  return out;
}
