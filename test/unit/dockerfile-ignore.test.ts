import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyChmod,
  createIgnoreMatcher,
  loadDockerignore,
  parseChmod,
  parseDockerignore,
} from '../../src/dockerfile/index.js';

describe('createIgnoreMatcher: single patterns (moby patternmatcher results)', () => {
  const cases: [string, string, boolean][] = [
    ['*', 'fileutils.go', true],
    ['*.go', 'fileutils.go', true],
    ['*.go', 'pkg/fileutils.go', false],
    ['**', 'file', true],
    ['**', 'dir/file', true],
    ['**/', 'file', true],
    ['**/**', 'dir/file', true],
    ['dir/**', 'dir/file', true],
    ['dir/**', 'dir/dir2/file', true],
    ['**/dir', 'dir', true],
    ['**/dir', 'dir/file', true],
    ['**/dir2/*', 'dir/dir2/file', true],
    ['**/dir2/**', 'dir/dir2/dir3/file', true],
    ['**file', 'file', true],
    ['**file', 'dir/dir/file', true],
    ['**/file', 'dir/dir/file', true],
    ['**/file*', 'dir/dir/file.txt', true],
    ['**/file*txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt2', 'dir/dir/file.txt', false],
    ['**/*.txt', 'file.txt', true],
    ['a**/*.txt', 'a/dir/dir/file.txt', true],
    ['a/*.txt', 'a/dir/file.txt', false],
    ['a/*.txt', 'a/file.txt', true],
    ['a/*.txt**', 'a/file.txt', true],
    ['a[b-d]e', 'ae', false],
    ['a[b-d]e', 'ace', true],
    ['a[b-d]e', 'aae', false],
    ['a[^b-d]e', 'aze', true],
    ['.*', '.foo', true],
    ['.*', 'foo', false],
    ['abc.def', 'abcdef', false],
    ['abc.def', 'abc.def', true],
    ['abc?def', 'abcZdef', true],
    ['abc?def', 'abcdef', false],
    ['a\\\\', 'a\\', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['**/foo/bar', 'foo/bar', true],
    ['**/foo/bar', 'dir/dir2/foo/bar', true],
    ['abc/**', 'abc', false],
    ['abc/**', 'abc/def/ghi', true],
    ['**/.foo', '.foo', true],
    ['**/.foo', 'bar.foo', false],
    ['a(b)c/def', 'a(b)c/def', true],
    ['a(b)c/def', 'a(b)c/xyz', false],
    ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
    ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
    ['node_modules', 'node_modules/react/index.js', true],
    ['docs/', 'docs/README.md', true],
    ['./build/', 'build/out.o', true],
    ['/secret.txt', 'secret.txt', true],
  ];
  it.each(cases)('%s vs %s → %s', (pattern, path, expected) => {
    expect(createIgnoreMatcher(parseDockerignore(pattern)).matches(path)).toBe(expected);
  });
});

describe('createIgnoreMatcher: exceptions, last match wins', () => {
  const cases: [string[], string, boolean][] = [
    [['!fileutils.go', '*.go'], 'fileutils.go', true],
    [['*.go', '!fileutils.go'], 'fileutils.go', false],
    [['docs', '!docs/README.md'], 'docs/README.md', false],
    [['docs/', '!docs/README.md'], 'docs/README.md', false],
    [['docs/*', '!docs/README.md'], 'docs/README.md', false],
    [['docs', '!docs/README.md'], 'docs/other.md', true],
    [['**', '!util/docker/web'], 'util/docker/web/foo', false],
    [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
    [['**', '!dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
    [['*.md', '!README*.md', 'README-secret.md'], 'README.md', false],
    [['*.md', '!README*.md', 'README-secret.md'], 'README-secret.md', true],
  ];
  it.each(cases)('%j vs %s → %s', (patterns, path, expected) => {
    expect(createIgnoreMatcher(patterns).matches(path)).toBe(expected);
  });

  it('never excludes the context root and reports exceptions', () => {
    const m = createIgnoreMatcher(['**', '!keep']);
    expect(m.matches('.')).toBe(false);
    expect(m.hasExceptions).toBe(true);
    expect(createIgnoreMatcher(['a']).hasExceptions).toBe(false);
  });

  it('rejects malformed patterns', () => {
    expect(() => createIgnoreMatcher(['!'])).toThrow(/illegal exclusion pattern/);
    expect(() => createIgnoreMatcher(['[a-'])).toThrow(/syntax error in pattern/);
    expect(() => createIgnoreMatcher(['a\\'])).toThrow(/syntax error in pattern/);
  });
});

describe('parseDockerignore', () => {
  it('drops comments and blanks, cleans paths and keeps exceptions', () => {
    const text =
      '\uFEFF# comment\n\n  node_modules  \n/dist/\n!  dist/keep.txt\n./a/../b\n**/*.log\r\n #not a comment\n';
    expect(parseDockerignore(text)).toEqual([
      'node_modules',
      'dist',
      '!dist/keep.txt',
      'b',
      '**/*.log',
      '#not a comment',
    ]);
  });
});

describe('loadDockerignore', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gantry-ignore-'));
    await mkdir(join(dir, 'ctx'));
    await mkdir(join(dir, 'files'));
    await writeFile(join(dir, 'ctx', '.dockerignore'), '*.tmp\n');
    await writeFile(join(dir, 'files', 'Dockerfile.dev.dockerignore'), '**\n!src\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prefers <Dockerfile>.dockerignore next to the Dockerfile', async () => {
    const loaded = await loadDockerignore(join(dir, 'ctx'), join(dir, 'files', 'Dockerfile.dev'));
    expect(loaded).toEqual({
      file: join(dir, 'files', 'Dockerfile.dev.dockerignore'),
      patterns: ['**', '!src'],
    });
  });

  it('falls back to the context .dockerignore, then to nothing', async () => {
    expect(await loadDockerignore(join(dir, 'ctx'), join(dir, 'files', 'Dockerfile'))).toEqual({
      file: join(dir, 'ctx', '.dockerignore'),
      patterns: ['*.tmp'],
    });
    expect(await loadDockerignore(join(dir, 'files'), join(dir, 'files', 'Dockerfile'))).toEqual({
      patterns: [],
    });
  });
});

describe('--chmod', () => {
  const cases: [string, number, boolean, number][] = [
    ['755', 0o644, false, 0o755],
    ['0640', 0o777, true, 0o640],
    ['4755', 0o644, false, 0o4755],
    ['+x', 0o644, false, 0o755],
    ['u+x', 0o644, false, 0o744],
    ['go-w', 0o666, false, 0o644],
    ['a=r', 0o755, false, 0o444],
    ['u=rwx,go=rx', 0o600, false, 0o755],
    ['u=rw,g=r,o=', 0o777, false, 0o640],
    ['a+X', 0o644, false, 0o644],
    ['a+X', 0o644, true, 0o755],
    ['a+X', 0o744, false, 0o755],
    ['g=u', 0o740, false, 0o770],
    ['o-rwx', 0o777, false, 0o770],
    ['u+s', 0o755, false, 0o4755],
    ['+t', 0o777, true, 0o1777],
    ['u=rwx,g+rx-w', 0o622, false, 0o752],
  ];
  it.each(cases)('%s on %o (dir=%s) → %o', (spec, mode, isDir, expected) => {
    expect(applyChmod(parseChmod(spec), mode, isDir).toString(8)).toBe(expected.toString(8));
  });

  it.each(['8', '99999', 'u+q', 'x+r', 'u', ''])('rejects %j', (spec) => {
    expect(() => parseChmod(spec)).toThrow(/invalid chmod parameter/);
  });
});
