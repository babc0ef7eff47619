/**
 * build/sources: what a `--from=` names (COPY --from, RUN --mount from=): a stage of this Dockerfile, by name or
 * index, or an image, each as the stage state whose key stands for its content.
 */
import { type Instruction, resolveSource } from '../dockerfile/index.js';
import type { BuildContext, StageState } from './types.js';

/** The state of the stage or image `from` names; waits for a stage still building. */
export async function fromState(
  ctx: BuildContext,
  instruction: Instruction,
  from: string,
  subject: string,
  options: { allowIndex: boolean } = { allowIndex: true },
): Promise<StageState> {
  const source = resolveSource(ctx.ir, instruction, from, options);
  return source.kind === 'stage'
    ? await (ctx.stages.get(source.index) as Promise<StageState>)
    : await ctx.imageBase(source.ref, subject);
}
