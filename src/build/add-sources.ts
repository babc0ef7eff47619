/**
 * build/add-sources: the COPY/ADD sources that are not files of a tree — heredocs, HTTP(S) URLs and Git
 * repositories. `prepareSources` does what the cache key needs before the lookup (heredoc files written, a URL
 * without --checksum downloaded, a Git ref resolved to its commit); `stageSources` writes them into the
 * changes directory on a miss (downloading a checksummed URL only then, so a hit never touches the network).
 */
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { AddInstruction, CopyInstruction } from '../dockerfile/index.js';
import { GantryError } from '../errors/index.js';
import type { Logger } from '../util/log.js';
import { extractArchive, isArchive } from './add-archive.js';
import { checkoutGit, type GitSource, isGitSource, parseGitSource, resolveGitRef } from './add-git.js';
import { type Downloaded, download, isHttpUrl, redactUrl } from './add-http.js';
import { type CopyEntry, fingerprintEntries, planCopy } from './copy-plan.js';
import { makeParents, type Owner, type StageCopyOptions, stageCopy } from './copy-stage.js';

export type RemoteSource =
  | { kind: 'http'; url: string; checksum?: string; downloaded?: Downloaded }
  | { kind: 'git'; source: GitSource; commit: string; keepGitDir: boolean };

export interface PreparedSources {
  /** Sources read from the context or the --from tree. */
  local: string[];
  remote: RemoteSource[];
  /** Heredoc files, as copy entries from the scratch directory. */
  inline: CopyEntry[];
  /** Cache-key inputs: per-remote identity (checksum, content digest or commit). */
  identities: Record<string, string>;
  /** Heredoc fingerprints by destination. */
  inlineFiles: Record<string, string>;
}

export interface PrepareOptions {
  instruction: CopyInstruction | AddInstruction;
  /** Absolute destination, keeping a trailing `/`. */
  dest: string;
  /** Whether a single file source lands inside dest (dest is a directory, or there are several sources). */
  toDir: boolean;
  /** Scratch directory for heredoc files and downloads, removed by the caller. */
  scratch: string;
  /** Heredoc files' mtime. */
  mtime: Date;
  subject: string;
}

/** The source as history and cache records show it: URL credentials replaced. */
export function shownSource(source: string): string {
  return isHttpUrl(source) || isGitSource(source) ? redactUrl(source) : source;
}

function landing(o: PrepareOptions, name: string): string {
  return o.toDir ? posix.join(o.dest, name) : posix.normalize(o.dest);
}

export async function prepareSources(o: PrepareOptions): Promise<PreparedSources> {
  const i = o.instruction;
  const out: PreparedSources = { local: [], remote: [], inline: [], identities: {}, inlineFiles: {} };
  for (const [n, source] of i.sources.entries()) {
    if (i.kind === 'ADD' && isGitSource(source)) {
      const git = parseGitSource(source, o.subject);
      if (i.keepGitDir !== undefined && git.keepGitDir !== undefined && i.keepGitDir !== git.keepGitDir) {
        throw new GantryError('INVALID_ARGUMENT', 'inconsistent keep-git-dir configuration', {
          subject: o.subject,
        });
      }
      if (i.checksum && git.checksum && i.checksum !== git.checksum) {
        throw new GantryError('INVALID_ARGUMENT', `checksum mismatch ${i.checksum} != ${git.checksum}`, {
          subject: o.subject,
        });
      }
      const checksum = i.checksum ?? git.checksum;
      const commit = await resolveGitRef(git, o.subject);
      if (checksum && !commit.startsWith(checksum)) {
        throw new GantryError(
          'DIGEST_MISMATCH',
          `ADD ${redactUrl(source)}: checksum mismatch: expected commit ${checksum}, got ${commit}`,
          { subject: o.subject },
        );
      }
      const keepGitDir = i.keepGitDir ?? git.keepGitDir ?? false;
      out.remote.push({ kind: 'git', source: git, commit, keepGitDir });
      out.identities[`git:${n}`] = commit;
    } else if (i.kind === 'ADD' && isHttpUrl(source)) {
      if (i.checksum) {
        // The checksum names the content: the key needs no download, and a hit does none.
        out.remote.push({ kind: 'http', url: source, checksum: i.checksum });
        out.identities[`url:${n}`] = i.checksum;
        continue;
      }
      const dir = join(o.scratch, `url-${n}`);
      await mkdir(dir);
      const downloaded = await download({ url: source, dir, subject: o.subject });
      out.remote.push({ kind: 'http', url: source, downloaded });
      out.identities[`url:${n}`] = downloaded.digest;
    } else {
      out.local.push(source);
    }
  }
  for (const [n, doc] of i.inline.entries()) {
    // BuildKit writes each heredoc as a 0644 file named after its delimiter, then copies it like a file.
    const dir = join(o.scratch, `inline-${n}`);
    await mkdir(dir);
    const name = posix.basename(doc.name);
    const source = join(dir, name);
    await writeFile(source, doc.content, { mode: 0o644 });
    await utimes(source, o.mtime, o.mtime);
    out.inline.push({
      source,
      dest: landing(o, name),
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      match: true,
    });
  }
  Object.assign(out.inlineFiles, await fingerprintEntries(out.inline));
  return out;
}

export interface StageSourcesOptions {
  prepared: PreparedSources;
  o: PrepareOptions;
  /** ADD --unpack: extract archives (only when asked for URLs, as in BuildKit). */
  unpackUrls: boolean;
  changes: string;
  owners: Map<string, Owner>;
  stage: Omit<StageCopyOptions, 'entries' | 'changes' | 'sourceOwner'>;
  /** Whether dest exists in the image (a tree source then keeps its metadata). */
  destExists: boolean;
  /** Told about archive entries that were not extracted. */
  logger: Logger;
}

/** Extracts an archive into `dest` (created like BuildKit's MkdirAll, 0755 with the --chown owner). */
export async function unpackInto(
  s: Pick<StageSourcesOptions, 'changes' | 'owners' | 'stage' | 'logger'>,
  archive: string,
  name: string,
  dest: string,
): Promise<void> {
  const destPath = posix.normalize(dest);
  await makeParents(
    {
      changes: s.changes,
      ...(s.stage.owner ? { owner: s.stage.owner } : {}),
      existingDir: s.stage.existingDir,
      owners: s.owners,
    },
    posix.join(destPath, '.unpack'),
  );
  const result = await extractArchive({
    archive,
    name,
    target: join(s.changes, destPath),
    ...(s.stage.owner ? { owner: s.stage.owner } : {}),
    owners: s.owners,
    subject: s.stage.subject,
  });
  for (const skipped of result.skipped) {
    s.logger.warn(`${s.stage.subject}: ${name}: ${skipped.path}: ${skipped.reason}`);
  }
}

/** Writes the remote and heredoc sources into the changes directory, in BuildKit's order. */
export async function stageSources(s: StageSourcesOptions): Promise<void> {
  const { o } = s;
  const stageEntries = (entries: CopyEntry[]) =>
    stageCopy({
      ...s.stage,
      entries,
      changes: s.changes,
      sourceOwner: () => ({ uid: 0, gid: 0 }),
      owners: s.owners,
    });
  for (const [n, remote] of s.prepared.remote.entries()) {
    if (remote.kind === 'http') {
      let file = remote.downloaded;
      if (!file) {
        const dir = join(o.scratch, `url-${n}`);
        await mkdir(dir, { recursive: true });
        file = await download({
          url: remote.url,
          dir,
          subject: o.subject,
          ...(remote.checksum ? { checksum: remote.checksum } : {}),
        });
      }
      if (s.unpackUrls && (await isArchive(file.path, o.subject))) {
        await unpackInto(s, file.path, redactUrl(remote.url), o.dest);
        continue;
      }
      await stageEntries([
        {
          source: file.path,
          dest: landing(o, file.name),
          type: 'file',
          mode: 0o600,
          uid: 0,
          gid: 0,
          match: true,
        },
      ]);
      continue;
    }
    const dir = join(o.scratch, `git-${n}`);
    await mkdir(dir, { mode: 0o755 });
    const root = await checkoutGit({
      source: remote.source,
      commit: remote.commit,
      dir,
      keepGitDir: remote.keepGitDir,
      subject: o.subject,
    });
    const entries = await planCopy({
      root,
      sources: ['/'],
      dest: o.dest,
      destIsDir: true,
      destExists: s.destExists,
      subject: o.subject,
    });
    await stageEntries(entries);
  }
  if (s.prepared.inline.length > 0) await stageEntries(s.prepared.inline);
}
