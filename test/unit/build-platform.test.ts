// build/platform: binfmt_misc entries (as the kernel prints them) matched against each architecture's ELF
// header, and the reason RUN cannot execute a platform, read from a binfmt_misc directory.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binfmtInterpreter, binfmtMatches, cannotRun } from '../../src/build/platform.js';
import { hostPlatform } from '../../src/oci/index.js';

const entry = (magic: string, mask: string, enabled = 'enabled') =>
  `${enabled}\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: POCF\noffset 0\nmagic ${magic}\nmask ${mask}\n`;
// qemu-user-static's registrations (Debian 12).
const AARCH64 = entry('7f454c460201010000000000000000000200b700', 'ffffffffffffff00fffffffffffffffffeffffff');
const ARM = entry('7f454c4601010100000000000000000002002800', 'ffffffffffffff00fffffffffffffffffeffffff');
const S390X = entry('7f454c4602020100000000000000000000020016', 'ffffffffffffff00fffffffffffffffffffeffff');
const PYTHON = 'enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n';

describe('binfmtMatches', () => {
  it('matches an entry to the architecture whose executables it claims', () => {
    expect(binfmtMatches(AARCH64, 'arm64')).toBe(true);
    expect(binfmtMatches(AARCH64, 'arm')).toBe(false);
    expect(binfmtMatches(ARM, 'arm')).toBe(true);
    expect(binfmtMatches(S390X, 's390x')).toBe(true);
    expect(binfmtMatches(S390X, 'arm64')).toBe(false);
    expect(binfmtMatches(PYTHON, 'arm64')).toBe(false);
  });

  it('ignores disabled entries and unknown architectures', () => {
    expect(binfmtMatches(AARCH64.replace('enabled', 'disabled'), 'arm64')).toBe(false);
    expect(binfmtMatches(AARCH64, 'sparc64')).toBe(false);
  });
});

describe('cannotRun', () => {
  it('allows the host architecture and registered interpreters, and says why otherwise', async () => {
    const root = await mkdtemp(join(tmpdir(), 'gantry-binfmt-'));
    await writeFile(join(root, 'status'), 'enabled\n');
    await writeFile(join(root, 'python3.11'), PYTHON);
    await writeFile(join(root, 'qemu-s390x'), S390X);
    const host = hostPlatform();
    expect(await cannotRun(host, root)).toBeUndefined();
    expect(await binfmtInterpreter('s390x', root)).toBe('qemu-s390x');
    expect(await cannotRun({ os: 'linux', architecture: 's390x' }, root)).toBeUndefined();
    expect(await cannotRun({ os: 'linux', architecture: 'riscv64' }, root)).toContain(
      'no binfmt_misc interpreter is registered for riscv64',
    );
    expect(await cannotRun({ os: 'windows', architecture: host.architecture }, root)).toContain(
      'cannot run on a linux host',
    );
  });
});
