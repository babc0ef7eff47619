/**
 * dockerfile/expand: BuildKit's word lexer (frontend/dockerfile/shell): quote removal, escapes and variable
 * expansion (`$a`, `${a}`, `${a:-b}`, `${a-b}`, `${a:+b}`, `${a+b}`, `${a:?msg}`, `${a?msg}`, `${a#p}`,
 * `${a##p}`, `${a%p}`, `${a%%p}`, `${a/p/r}`, `${a//p/r}`), as pure functions over a variable map.
 */

/** Variables visible to an expansion: a missing key is unset, an empty string is set-but-empty. */
export type Variables = ReadonlyMap<string, string>;

export interface ExpandOptions {
  /** The Dockerfile's escape token (`\` or `` ` ``). */
  escape?: string;
}

/** Lexer switches BuildKit uses internally (heredoc detection, heredoc bodies); not part of the public API. */
export interface LexOptions extends ExpandOptions {
  /** Keep quote characters in the output. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (COPY heredoc bodies). */
  skipQuotes?: boolean;
  /** Leave references to unset variables as written. */
  skipUnset?: boolean;
}

export interface ExpandResult {
  /** The word with quotes removed and variables replaced. */
  value: string;
  /** The word split on unquoted whitespace after expansion (EXPOSE, heredoc detection). */
  words: string[];
  /** Variables the word referenced that were set. */
  matched: Set<string>;
  /** Variables the word referenced that were unset. */
  unmatched: Set<string>;
}

/** Thrown for malformed words; callers add the file location and instruction. */
export class ExpansionError extends Error {
  override name = 'ExpansionError';
}

/** Expands one word (ENV values, paths, USER...) the way BuildKit's `ProcessWord` does. */
export function expandWord(word: string, vars: Variables, options: ExpandOptions = {}): string {
  return lexWord(word, vars, options).value;
}

/** Expands and splits into words the way BuildKit's `ProcessWords` does (used for EXPOSE). */
export function expandWords(word: string, vars: Variables, options: ExpandOptions = {}): string[] {
  return lexWord(word, vars, options).words;
}

/** Full result of lexing one word, including which variables it used. */
export function lexWord(word: string, vars: Variables, options: LexOptions = {}): ExpandResult {
  const lexer = new Lexer(word, vars, options);
  try {
    const { value, words } = lexer.processStopOn(undefined, options.rawEscapes ?? false);
    return { value, words, matched: lexer.matched, unmatched: lexer.unmatched };
  } catch (err) {
    if (err instanceof ExpansionError) {
      throw new ExpansionError(`failed to process ${JSON.stringify(word)}: ${err.message}`);
    }
    throw err;
  }
}

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const isNameChar = (ch: string): boolean => /^[\p{L}\p{Nd}_]$/u.test(ch);
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Collects words split on unquoted whitespace, alongside the unsplit result. */
class WordCollector {
  private buf = '';
  private inWord = false;
  readonly words: string[] = [];

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf !== '') {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  addRaw(text: string): void {
    this.buf += text;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf !== '') {
      this.words.push(this.buf);
      this.buf = '';
    }
    return this.words;
  }
}

class Lexer {
  private readonly chars: string[];
  private pos = 0;
  private readonly escape: string;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    text: string,
    private readonly vars: Variables,
    private readonly opts: LexOptions,
  ) {
    this.chars = Array.from(text);
    this.escape = opts.escape ?? '\\';
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  private lookup(name: string): string | undefined {
    const value = this.vars.get(name);
    (value === undefined ? this.unmatched : this.matched).add(name);
    return value;
  }

  /** Reads up to `stop` (consumed) or the end; `rawEscapes` keeps escape tokens (for glob patterns). */
  processStopOn(stop: string | undefined, rawEscapes: boolean): { value: string; words: string[] } {
    let result = '';
    const words = new WordCollector();
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (stop !== undefined && ch === stop) {
        this.next();
        return { value: result, words: words.finish() };
      }
      if (ch === '$') {
        const expanded = this.processDollar();
        result += expanded;
        words.addString(expanded);
        continue;
      }
      if (ch === '<' || (!this.opts.skipQuotes && (ch === "'" || ch === '"'))) {
        const text =
          ch === '<' ? this.processPossibleHeredoc() : ch === "'" ? this.singleQuoted() : this.doubleQuoted();
        result += text;
        words.addRaw(text);
        continue;
      }
      this.next();
      if (ch === this.escape) {
        if (rawEscapes) {
          words.addRaw(ch);
          result += ch;
        }
        const escaped = this.next();
        if (escaped === undefined) break;
        words.addRaw(escaped);
        result += escaped;
        continue;
      }
      words.addChar(ch);
      result += ch;
    }
    if (stop !== undefined) {
      throw new ExpansionError(`unexpected end of statement while looking for matching ${stop}`);
    }
    return { value: result, words: words.finish() };
  }

  private singleQuoted(): string {
    const raw = this.opts.rawQuotes ?? false;
    const open = this.next() as string;
    let out = raw ? open : '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) {
        throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      }
      if (ch === "'") return raw ? out + ch : out;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    const raw = this.opts.rawQuotes ?? false;
    const open = this.next() as string;
    let out = raw ? open : '';
    for (;;) {
      const peeked = this.peek();
      if (peeked === undefined) {
        throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      }
      if (peeked === '"') {
        this.next();
        return raw ? out + peeked : out;
      }
      if (peeked === '$') {
        out += this.processDollar();
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.escape) {
        if (this.opts.rawEscapes) out += ch;
        const after = this.peek();
        if (after === undefined) continue; // a trailing escape is dropped; the loop then reports the open quote
        // Inside double quotes only ", $ and the escape token itself can be escaped.
        if (after === '"' || after === '$' || after === this.escape) ch = this.next() as string;
      }
      out += ch;
    }
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    // `<< EOF` stays one word so heredoc detection sees it whole.
    let space = '';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) {
      space += ch;
      this.next();
    }
    return `<<${space}`;
  }

  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        // Positional parameters: $1, $10 ... always unset here.
        while (this.peek() !== undefined && isDigit(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) return this.next() as string;
      if (!isNameChar(ch)) break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnset) return `$${name}`;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':')
      throw new ExpansionError('syntax error: bad substitution');
    const name = this.processName();
    let op = this.next();
    if (op === undefined) throw new ExpansionError("syntax error: missing '}'");
    if (op === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (op === '/') return this.substitute(name);
    let modifier = op;
    const colon = op === ':';
    if (colon) {
      op = this.next();
      if (op === undefined) throw new ExpansionError("syntax error: missing '}'");
      modifier += op;
    }
    if (!['+', '-', '?', '#', '%'].includes(op)) {
      throw new ExpansionError(`unsupported modifier (${modifier}) in substitution`);
    }
    const isTrim = op === '#' || op === '%';
    if (colon && isTrim) throw new ExpansionError(`unsupported modifier (${modifier}) in substitution`);
    let word = this.untilBrace(isTrim);
    const value = this.lookup(name);
    if (value === undefined && this.opts.skipUnset) return `\${${name}${modifier}${word}}`;
    const unsetOrNull = value === undefined || (colon && value === '');
    switch (op) {
      case '-':
        return unsetOrNull ? word : (value as string);
      case '+':
        return unsetOrNull ? '' : word;
      case '?':
        if (value === undefined) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (colon && value === '')
          throw new ExpansionError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        // `#`/`%` remove the shortest match, `##`/`%%` the longest.
        const greedy = word.startsWith(op);
        if (greedy) word = word.slice(1);
        return op === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
      }
    }
  }

  private untilBrace(rawEscapes: boolean): string {
    try {
      return this.processStopOn('}', rawEscapes).value;
    } catch (err) {
      if (this.peek() === undefined) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }
  }

  private substitute(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).value;
    } catch (err) {
      if (this.peek() === undefined) throw new ExpansionError("syntax error: missing '/' in $" + '{}');
      throw err;
    }
    const replacement = this.untilBrace(true);
    const value = this.lookup(name);
    if (value === undefined && this.opts.skipUnset) return `\${${name}/${pattern}/${replacement}}`;
    const re = patternToRegExp(pattern, { greedy: true, anchored: false, global: all });
    // A function replacer keeps `$&` and friends in the replacement literal.
    return (value ?? '').replace(re, () => replacement);
  }
}

/**
 * Converts a `${a#pattern}` glob (`*`, `?`, `\` escapes, no bracket expressions) to a RegExp.
 * `\}` and `\/` lose their backslash: they were only escaped to get past the `${}` syntax.
 */
function patternToRegExp(
  pattern: string,
  opts: { greedy: boolean; anchored: boolean; global?: boolean },
): RegExp {
  const chars = Array.from(pattern);
  let out = opts.anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '*') out += opts.greedy ? '.*' : '.*?';
    else if (ch === '?') out += '.';
    else if (ch === '\\') {
      const nextCh = chars[i + 1];
      if (nextCh === '}' || nextCh === '/') continue;
      if (nextCh !== '*' && nextCh !== '?' && nextCh !== '\\') {
        throw new ExpansionError(
          `invalid pattern (${pattern}) in substitution: invalid escape '\\${nextCh ?? ''}'`,
        );
      }
      out += `\\${nextCh}`;
      i++;
    } else if ('[]{}.+()|^$'.includes(ch)) out += `\\${ch}`;
    else out += ch;
  }
  return new RegExp(out, opts.global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = patternToRegExp(pattern, { greedy, anchored: true }).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Keeps `\x` escape pairs in order while reversing, so `a\*c` becomes `c\*a`. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = [];
  for (let i = 0; i < chars.length; ) {
    if (chars[i] === '\\' && i !== chars.length - 1) {
      out.unshift('\\', chars[i + 1] as string);
      i += 2;
    } else {
      out.unshift(chars[i] as string);
      i++;
    }
  }
  return out.join('');
}

const reverse = (s: string): string => Array.from(s).reverse().join('');

/** Regular expressions find leftmost matches only, so suffixes are trimmed as prefixes of the reversed value. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}
