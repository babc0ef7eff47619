/**
 * dockerfile/dockerignore: `.dockerignore` rules with moby/patternmatcher's semantics — `*`, `?`, `[...]`,
 * `**`, `!` exceptions where the last matching rule wins, and a directory rule covering everything below it.
 * Parsing and matching are pure; `loadDockerignore` (in load-dockerignore.ts) is the only file access.
 */
import { posix } from 'node:path';
import { GantryError } from '../errors/index.js';

/** Go's filepath.Clean for slash paths. */
function clean(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Reads ignore-file text into patterns (moby ignorefile.ReadAll): comments, blanks, `!`, leading `/`. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern !== '') {
      pattern = clean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface CompiledPattern {
  text: string;
  exclusion: boolean;
  type: MatchType;
  regexp?: RegExp;
}

const REGEX_ESCAPES = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/** patternmatcher's compile: cheap exact/prefix/suffix matches where possible, a regexp otherwise. */
function compile(text: string, exclusion: boolean): CompiledPattern {
  const chars = Array.from(text);
  let re = '^';
  let type: MatchType = 'exact';
  for (let i = 0, step = 0; i < chars.length; i++, step++) {
    const ch = chars[i] as string;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (step === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (REGEX_ESCAPES.has(ch)) re += `\\${ch}`;
    else if (ch === '\\') {
      if (i + 1 < chars.length) {
        i++;
        re += `\\${chars[i]}`;
        type = 'regexp';
      } else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = 'regexp';
    } else re += ch;
  }
  if (type !== 'regexp') return { text, exclusion, type };
  let regexp: RegExp;
  try {
    regexp = new RegExp(`${re}$`);
  } catch (err) {
    throw new GantryError('INVALID_ARGUMENT', `syntax error in pattern ${JSON.stringify(text)}`, {
      cause: err,
    });
  }
  return { text, exclusion, type, regexp };
}

function matchOne(p: CompiledPattern, path: string): boolean {
  switch (p.type) {
    case 'exact':
      return path === p.text;
    case 'prefix':
      return path.startsWith(p.text.slice(0, -2));
    case 'suffix': {
      const suffix = p.text.slice(2);
      return path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
    }
    default:
      return (p.regexp as RegExp).test(path);
  }
}

export interface IgnoreMatcher {
  readonly patterns: readonly string[];
  /** True when some rule starts with `!`: an excluded directory may still hold included files. */
  readonly hasExceptions: boolean;
  /** Whether a context-relative path (or a directory above it) is excluded, after `!` exceptions. */
  matches(path: string): boolean;
}

/** Builds a matcher from patterns as `parseDockerignore` returns them (or COPY --exclude values). */
export function createIgnoreMatcher(patterns: readonly string[]): IgnoreMatcher {
  const compiled: CompiledPattern[] = [];
  for (const raw of patterns) {
    let p = raw.trim();
    if (p === '') continue;
    p = clean(p);
    let exclusion = false;
    if (p.startsWith('!')) {
      if (p.length === 1) throw new GantryError('INVALID_ARGUMENT', 'illegal exclusion pattern: "!"');
      exclusion = true;
      p = p.slice(1);
    }
    if (/\[[^\]]*$/.test(p) || /(^|[^\\])(\\\\)*\\$/.test(p)) {
      throw new GantryError('INVALID_ARGUMENT', `syntax error in pattern ${JSON.stringify(raw)}`);
    }
    compiled.push(compile(p, exclusion));
  }
  return {
    patterns: compiled.map((c) => (c.exclusion ? `!${c.text}` : c.text)),
    hasExceptions: compiled.some((c) => c.exclusion),
    matches(path: string): boolean {
      const file = clean(path.replace(/^\/+/, ''));
      if (file === '.') return false;
      const parent = posix.dirname(file);
      const parentDirs = parent.split('/');
      let matched = false;
      for (const p of compiled) {
        // Only rules that could flip the current answer are consulted.
        if (p.exclusion !== matched) continue;
        let match = matchOne(p, file);
        for (let i = 0; !match && parent !== '.' && i < parentDirs.length; i++) {
          match = matchOne(p, parentDirs.slice(0, i + 1).join('/'));
        }
        if (match) matched = !p.exclusion;
      }
      return matched;
    },
  };
}
