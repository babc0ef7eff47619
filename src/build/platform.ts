/**
 * build/platform: whether RUN can execute a platform's binaries here — natively (the host's architecture, or
 * 386 on amd64) or through a binfmt_misc interpreter the kernel has registered (e.g. qemu-user-static), read
 * from /proc/sys/fs/binfmt_misc. `binfmtMatches` is pure: an entry's magic and mask are tested against the ELF
 * header an executable of that architecture starts with.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatPlatform, hostPlatform, type Platform } from '../oci/index.js';

/** ELF identification of each architecture's executables: class (1: 32-bit, 2: 64-bit), data (1: LE, 2: BE), machine. */
const ELF: Record<string, { elfClass: number; data: number; machine: number }> = {
  amd64: { elfClass: 2, data: 1, machine: 0x3e },
  '386': { elfClass: 1, data: 1, machine: 0x03 },
  arm64: { elfClass: 2, data: 1, machine: 0xb7 },
  arm: { elfClass: 1, data: 1, machine: 0x28 },
  ppc64le: { elfClass: 2, data: 1, machine: 0x15 },
  s390x: { elfClass: 2, data: 2, machine: 0x16 },
  riscv64: { elfClass: 2, data: 1, machine: 0xf3 },
  mips64le: { elfClass: 2, data: 1, machine: 0x08 },
  loong64: { elfClass: 2, data: 1, machine: 0x102 },
};

/** Architectures the host CPU runs without help. */
function nativeArchitectures(host: string): string[] {
  return host === 'amd64' ? ['amd64', '386'] : [host];
}

/** The first 20 bytes of an ELF executable for `arch` (what binfmt_misc magic strings are matched against). */
function elfHeader(arch: string): Buffer | undefined {
  const e = ELF[arch];
  if (!e) return undefined;
  const h = Buffer.alloc(20);
  h.set([0x7f, 0x45, 0x4c, 0x46, e.elfClass, e.data, 1], 0);
  if (e.data === 1) h.writeUInt16LE(2, 16);
  else h.writeUInt16BE(2, 16);
  if (e.data === 1) h.writeUInt16LE(e.machine, 18);
  else h.writeUInt16BE(e.machine, 18);
  return h;
}

/**
 * Whether a binfmt_misc entry (the text of `/proc/sys/fs/binfmt_misc/<name>`) is enabled and matches `arch`'s
 * executables. Entries by extension (`extension ...`) never match.
 */
export function binfmtMatches(entry: string, arch: string): boolean {
  const lines = entry.split('\n').map((l) => l.trim());
  if (lines[0] !== 'enabled') return false;
  const field = (name: string) => lines.find((l) => l.startsWith(`${name} `))?.slice(name.length + 1);
  const magicHex = field('magic');
  const header = elfHeader(arch);
  if (!magicHex || !header) return false;
  const offset = Number(field('offset') ?? '0');
  const magic = Buffer.from(magicHex, 'hex');
  const mask = field('mask') ? Buffer.from(field('mask') as string, 'hex') : Buffer.alloc(magic.length, 0xff);
  // The ELF header's pad bytes (7..15) are zero in real executables as well as in ours.
  for (let i = 0; i < magic.length; i++) {
    const at = offset + i;
    const byte = at < header.length ? (header[at] as number) : 0;
    if ((byte & (mask[i] ?? 0xff)) !== ((magic[i] as number) & (mask[i] ?? 0xff))) return false;
  }
  return true;
}

/** The name of a registered interpreter entry for `arch` under `root`, if any. */
export async function binfmtInterpreter(
  arch: string,
  root = '/proc/sys/fs/binfmt_misc',
): Promise<string | undefined> {
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of names.filter((n) => n !== 'register' && n !== 'status')) {
    const text = await readFile(join(root, name), 'utf8').catch(() => '');
    if (binfmtMatches(text, arch)) return name;
  }
  return undefined;
}

/**
 * Why RUN cannot execute `platform`'s binaries on this machine, or undefined when it can (natively or through a
 * registered interpreter).
 */
export async function cannotRun(platform: Platform, binfmtRoot?: string): Promise<string | undefined> {
  const host = hostPlatform();
  if (platform.os !== host.os) return `${formatPlatform(platform)} binaries cannot run on a ${host.os} host`;
  if (nativeArchitectures(host.architecture).includes(platform.architecture)) return undefined;
  if (await binfmtInterpreter(platform.architecture, binfmtRoot)) return undefined;
  return (
    `cannot execute ${formatPlatform(platform)} binaries on this ${formatPlatform(host)} host: no binfmt_misc ` +
    `interpreter is registered for ${platform.architecture} (install qemu-user-static, or run build tools in a ` +
    'stage FROM --platform=$BUILDPLATFORM)'
  );
}
