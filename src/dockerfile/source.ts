/**
 * dockerfile/source: turns Dockerfile text into BuildKit's "logical lines". dockerfile-ast finds the parser
 * directives and where each instruction starts; from there BuildKit's line rules apply (continuations with the
 * escape token, comment and empty lines inside continuations, heredoc bodies), keeping a map from each
 * character of the joined line back to its file line and column for error messages. Pure.
 */
import { DockerfileParser } from 'dockerfile-ast';
import { GantryError } from '../errors/index.js';
import { lexWord } from './expand.js';

/** A 1-based position in the Dockerfile. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface Directives {
  syntax?: string;
  escape: '\\' | '`';
  check?: string;
}

export interface Heredoc {
  /** The delimiter word with quotes removed, e.g. `EOF`. */
  name: string;
  /** File descriptor written before `<<` (`3<<EOF`), 0 when absent. */
  fd: number;
  /** `<<-`: leading tabs are stripped from the body and the delimiter line. */
  chomp: boolean;
  /** False when any part of the delimiter was quoted: the body is then taken literally. */
  expand: boolean;
  /** The body, every line ending in a newline, tabs already stripped for `<<-`. */
  content: string;
}

/** One instruction as BuildKit's parser sees it before instruction-specific parsing. */
export interface LogicalLine {
  /** The instruction word as written (`run`, `COPY`). */
  keyword: string;
  /** The joined line (BuildKit's `Original`). */
  text: string;
  flags: RawFlag[];
  /** Everything after the flags, trimmed. */
  args: string;
  /** Offset of `args` within `text`. */
  argsOffset: number;
  heredocs: Heredoc[];
  start: SourcePosition;
  endLine: number;
  /** An empty line sat inside the continuation (BuildKit warns: NoEmptyContinuation). */
  emptyContinuation: boolean;
  /** Maps an offset in `text` to its position in the file. */
  positionAt(offset: number): SourcePosition;
}

export interface RawFlag {
  /** The whole flag with quotes and escapes processed, e.g. `--mount=type=cache,target=/x`. */
  text: string;
  position: SourcePosition;
}

export interface SourceFile {
  directives: Directives;
  lines: LogicalLine[];
}

const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);
const HEREDOC_WORD = /^(\d*)<<(-?)\s*([^<]*)$/;

export function locationError(
  file: string,
  pos: SourcePosition,
  message: string,
  cause?: unknown,
): GantryError {
  return new GantryError('INVALID_ARGUMENT', message, {
    subject: `${file}:${pos.line}:${pos.column}`,
    cause,
  });
}

/** Splits the file into logical lines; `file` only names the file in errors. */
export function readSource(input: string, file: string): SourceFile {
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  const ast = DockerfileParser.parse(text);
  const directives = readDirectives(ast, file);
  const escapeToken = directives.escape;
  const fileLines = text.split('\n').map((l) => l.replace(/[\r\n]+$/, ''));
  const lines: LogicalLine[] = [];
  let next = 0; // first line index not yet consumed
  const read = (line: number, column: number): void => {
    const logical = readLogicalLine(fileLines, line, column, escapeToken, file);
    next = logical.endLine;
    lines.push(logical);
  };
  /** BuildKit's rules decide where instructions end; lines dockerfile-ast folded elsewhere are read here. */
  const fillGap = (until: number): void => {
    for (let i = next; i < until && i < fileLines.length; i = Math.max(i + 1, next)) {
      const raw = fileLines[i] as string;
      if (raw.trim() === '' || isComment(raw)) continue;
      read(i, raw.length - raw.trimStart().length);
    }
  };
  const starts = ast.getInstructions().map((i) => i.getRange().start);
  if (starts.length > 0) next = (starts[0] as { line: number }).line;
  for (const { line, character } of starts) {
    fillGap(line);
    // dockerfile-ast can report a line that BuildKit's rules fold into the previous instruction.
    if (line < next) continue;
    read(line, character);
  }
  fillGap(fileLines.length);
  if (lines.length === 0) {
    throw locationError(
      file,
      { line: Math.max(fileLines.length, 1), column: 1 },
      'file with no instructions',
    );
  }
  return { directives, lines };
}

function readDirectives(ast: ReturnType<typeof DockerfileParser.parse>, file: string): Directives {
  const out: Directives = { escape: '\\' };
  const seen = new Set<string>();
  for (const d of ast.getDirectives()) {
    const name = d.getName().toLowerCase();
    // BuildKit stops looking for directives at the first comment that is not a known one.
    if (!KNOWN_DIRECTIVES.has(name)) break;
    const pos = { line: d.getRange().start.line + 1, column: 1 };
    if (seen.has(name)) throw locationError(file, pos, `only one ${name} parser directive can be used`);
    seen.add(name);
    const value = d.getValue();
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw locationError(file, pos, `invalid escape token '${value}' does not match \` or \\`);
      }
      out.escape = value;
    } else if (name === 'syntax') out.syntax = value;
    else out.check = value;
  }
  return out;
}

const isComment = (line: string): boolean => line.trimStart().startsWith('#');

/** The trailing escape token (and spaces after it), unless the token is itself escaped. */
function continuationPattern(escapeToken: string): RegExp {
  const e = `\\${escapeToken}`;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

interface Segment {
  offset: number;
  line: number;
  column: number;
}

function readLogicalLine(
  fileLines: string[],
  startLine: number,
  startColumn: number,
  escapeToken: string,
  file: string,
): LogicalLine {
  const continuation = continuationPattern(escapeToken);
  const segments: Segment[] = [];
  let text = '';
  let index = startLine;
  let ended = false;
  let emptyContinuation = false;
  const append = (raw: string, lineIndex: number, column: number): void => {
    const m = continuation.exec(raw);
    let kept = raw;
    if (m) kept = raw.slice(0, m.index) + (m[1] ?? '');
    ended = !m;
    segments.push({ offset: text.length, line: lineIndex + 1, column: column + 1 });
    text += kept;
  };
  const first = fileLines[index] ?? '';
  append(first.slice(startColumn), index, startColumn);
  index++;
  while (!ended && index < fileLines.length) {
    const raw = fileLines[index] as string;
    index++;
    // Comment lines and empty lines inside a continuation are dropped (empty ones with a warning).
    if (isComment(raw)) continue;
    if (raw.trim() === '') {
      emptyContinuation = true;
      continue;
    }
    append(raw, index - 1, 0);
  }
  const positionAt = (offset: number): SourcePosition => {
    let seg = segments[0] as Segment;
    for (const s of segments) if (s.offset <= offset) seg = s;
    return { line: seg.line, column: seg.column + (offset - seg.offset) };
  };
  const start = { line: startLine + 1, column: startColumn + 1 };
  const split = splitCommand(text, escapeToken);
  const flags = split.flags.map((f) => ({ text: f.text, position: positionAt(f.offset) }));
  const line: LogicalLine = {
    keyword: split.keyword,
    text,
    flags,
    args: split.args,
    argsOffset: split.argsOffset,
    heredocs: [],
    start,
    endLine: index,
    emptyContinuation,
    positionAt,
  };
  if (canContainHeredoc(line, escapeToken) && text.includes('<<')) {
    for (const doc of heredocsFromLine(text)) {
      const terminator = doc.name;
      let content = '';
      let terminated = false;
      while (index < fileLines.length) {
        const raw = fileLines[index] as string;
        index++;
        const candidate = doc.chomp ? raw.replace(/^\t+/, '') : raw;
        if (candidate === terminator) {
          terminated = true;
          break;
        }
        content += `${raw}\n`;
      }
      if (!terminated)
        throw locationError(file, start, `${split.keyword.toUpperCase()}: unterminated heredoc`);
      line.heredocs.push({ ...doc, content: doc.chomp ? content.replace(/^\t+/gm, '') : content });
    }
    line.endLine = index;
  }
  return line;
}

function canContainHeredoc(line: LogicalLine, escapeToken: string): boolean {
  let keyword = line.keyword.toLowerCase();
  let args = line.args;
  if (keyword === 'onbuild') {
    const sub = splitCommand(args, escapeToken);
    keyword = sub.keyword.toLowerCase();
    args = sub.args;
  }
  return HEREDOC_KEYWORDS.has(keyword) && !isJsonArray(args);
}

/** BuildKit's test for exec form: the arguments parse as a JSON array (of anything). */
function isJsonArray(args: string): boolean {
  const trimmed = args.trimStart();
  if (!trimmed.startsWith('[')) return false;
  try {
    return Array.isArray(JSON.parse(trimmed));
  } catch {
    return false;
  }
}

/** Heredoc delimiters are found by lexing the whole line with quotes and escapes kept. */
function heredocsFromLine(text: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = lexWord(text, new Map(), { rawQuotes: true, rawEscapes: true, skipUnset: true }).words;
  } catch {
    return [];
  }
  const out: Omit<Heredoc, 'content'>[] = [];
  for (const word of words) {
    const doc = parseHeredocWord(word);
    if (doc) out.push(doc);
  }
  return out;
}

/** Recognises `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`; returns undefined for anything else. */
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m || m[3] === '') return undefined;
  const rest = m[3] as string;
  let plain: string[];
  let raw: string[];
  try {
    plain = lexWord(rest, new Map(), { skipUnset: true }).words;
    raw = lexWord(rest, new Map(), { skipUnset: true, rawQuotes: true }).words;
  } catch {
    return undefined;
  }
  if (plain.length !== 1 || raw.length !== 1) return undefined;
  const quotes = (s: string): number => (s.match(/['"]/g) ?? []).length;
  const name = plain[0] as string;
  return {
    name,
    fd: Number.parseInt(m[1] || '0', 10),
    chomp: m[2] === '-',
    expand: quotes(name) === quotes(raw[0] as string),
  };
}

interface SplitCommand {
  keyword: string;
  flags: { text: string; offset: number }[];
  args: string;
  argsOffset: number;
}

/** The instruction word, then leading `--flag` words (quotes and escapes removed), then the rest. */
export function splitCommand(text: string, escapeToken: string): SplitCommand {
  const lead = text.length - text.trimStart().length;
  const body = text.trim();
  const ws = /[\t\v\f\r ]+/.exec(body);
  if (!ws) return { keyword: body, flags: [], args: '', argsOffset: text.length };
  const keyword = body.slice(0, ws.index);
  const restStart = lead + ws.index + ws[0].length;
  const rest = text.slice(restStart, lead + body.length);
  const { flags, argsStart } = extractFlags(rest, escapeToken);
  const remaining = rest.slice(argsStart);
  const argsLead = remaining.length - remaining.trimStart().length;
  return {
    keyword,
    flags: flags.map((f) => ({ text: f.text, offset: restStart + f.offset })),
    args: remaining.trim(),
    argsOffset: restStart + argsStart + argsLead,
  };
}

/** BuildKit's extractBuilderFlags: words starting with `--` until the first other word or a lone `--`. */
function extractFlags(
  line: string,
  escapeToken: string,
): { flags: { text: string; offset: number }[]; argsStart: number } {
  const flags: { text: string; offset: number }[] = [];
  let pos = 0;
  while (pos < line.length) {
    while (pos < line.length && /\s/.test(line[pos] as string)) pos++;
    if (pos >= line.length) break;
    if (!line.startsWith('--', pos)) return { flags, argsStart: pos };
    const wordStart = pos;
    let word = '';
    let quote = '';
    let quoted = false;
    for (; pos < line.length; pos++) {
      let ch = line[pos] as string;
      if (quote === '') {
        if (/\s/.test(ch)) break;
        if (ch === "'" || ch === '"') {
          quote = ch;
          quoted = true;
          continue;
        }
      } else if (ch === quote) {
        quote = '';
        continue;
      }
      if (ch === escapeToken) {
        if (pos + 1 === line.length) {
          quote = '';
          continue;
        }
        pos++;
        ch = line[pos] as string;
      }
      word += ch;
    }
    if (word === '--') return { flags, argsStart: pos };
    if (quoted || word !== '') flags.push({ text: word, offset: wordStart });
  }
  return { flags, argsStart: line.length };
}

/** BuildKit's parseWords: whitespace-separated words, quotes and escapes kept for later expansion. */
export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let word = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i] as string;
    if (!inWord) {
      if (/\s/u.test(ch)) continue;
      inWord = true;
    }
    if (quote === '') {
      if (/\s/u.test(ch)) {
        if (blankOk || word !== '') words.push(word);
        word = '';
        inWord = false;
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === escapeToken) {
        if (i + 1 === chars.length) continue;
        // Unquoted, the escape and the escaped character are both kept.
        word += ch;
        i++;
        ch = chars[i] as string;
      }
      word += ch;
      continue;
    }
    if (ch === quote) quote = '';
    else if (ch === escapeToken && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = '';
        continue;
      }
      word += ch;
      i++;
      ch = chars[i] as string;
    }
    word += ch;
  }
  if (inWord && (blankOk || word !== '')) words.push(word);
  return words;
}
