/**
 * dockerfile/args: build arguments BuildKit defines without an ARG instruction: the automatic platform ARGs
 * (global scope only) and the predefined proxy ARGs, which reach RUN but stay out of history and cache keys
 * unless the Dockerfile declares them. Pure.
 */
import { formatPlatform, type Platform } from '../oci/index.js';

export interface PlatformPair {
  /** The platform of the machine running the build (BUILDPLATFORM). */
  build: Platform;
  /** The platform of the image being built (TARGETPLATFORM). */
  target: Platform;
}

/** The proxy variables Docker predefines; matched case-insensitively against --build-arg names. */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

export function isProxyArg(name: string): boolean {
  return ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'].includes(name.toLowerCase());
}

/**
 * The global-scope defaults BuildKit sets before the first ARG (dockerfile2llb/platform.go `defaultArgs`);
 * a --build-arg of the same name overrides each.
 */
export function automaticArgs(
  platforms: PlatformPair,
  buildArgs: Readonly<Record<string, string>>,
  target: string,
): Map<string, string> {
  const { build: bp, target: tp } = platforms;
  const entries: [string, string][] = [
    ['BUILDPLATFORM', formatPlatform(bp)],
    ['BUILDOS', bp.os],
    ['BUILDOSVERSION', bp['os.version'] ?? ''],
    ['BUILDARCH', bp.architecture],
    ['BUILDVARIANT', bp.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(tp)],
    ['TARGETOS', tp.os],
    ['TARGETOSVERSION', tp['os.version'] ?? ''],
    ['TARGETARCH', tp.architecture],
    ['TARGETVARIANT', tp.variant ?? ''],
    ['TARGETSTAGE', target || 'default'],
  ];
  return new Map(entries.map(([k, v]) => [k, Object.hasOwn(buildArgs, k) ? (buildArgs[k] as string) : v]));
}
