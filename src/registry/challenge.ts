/**
 * registry/challenge: parses `WWW-Authenticate` headers (RFC 7235) into challenges. Pure: handles several
 * challenges in one header, quoted strings containing commas or escaped quotes, and case-insensitive schemes
 * and parameter names.
 */

export interface Challenge {
  /** Lower-case scheme, e.g. `bearer` or `basic`. */
  scheme: string;
  /** Parameters with lower-case names, e.g. `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parses one or more `WWW-Authenticate` header values. Never throws: unparseable input yields fewer challenges. */
export function parseWwwAuthenticate(headerValues: string | readonly string[] | undefined): Challenge[] {
  if (headerValues === undefined) return [];
  const values = typeof headerValues === 'string' ? [headerValues] : headerValues;
  return values.flatMap((v) => new ChallengeScanner(v).challenges());
}

class ChallengeScanner {
  private pos = 0;
  constructor(private readonly text: string) {}

  challenges(): Challenge[] {
    const out: Challenge[] = [];
    // Bounded: every iteration consumes at least one character or stops.
    while (this.pos < this.text.length) {
      this.skipSeparators();
      const scheme = this.token();
      if (!scheme) {
        // Garbage: skip to the next comma so one odd challenge does not hide the others.
        const comma = this.text.indexOf(',', this.pos);
        if (comma < 0) break;
        this.pos = comma + 1;
        continue;
      }
      const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
      out.push(challenge);
      this.readParams(challenge.params);
    }
    return out;
  }

  /** Reads `name=value` pairs until a token that is not followed by `=` (the next challenge's scheme). */
  private readParams(params: Record<string, string>): void {
    for (;;) {
      this.skipSeparators();
      const start = this.pos;
      const name = this.token();
      if (!name) return;
      this.skipWs();
      if (this.text[this.pos] !== '=') {
        this.pos = start;
        return;
      }
      this.pos++;
      this.skipWs();
      params[name.toLowerCase()] = this.text[this.pos] === '"' ? this.quoted() : this.token68();
    }
  }

  private skipWs(): void {
    while (this.text[this.pos] === ' ' || this.text[this.pos] === '\t') this.pos++;
  }

  private skipSeparators(): void {
    while (this.text[this.pos] === ' ' || this.text[this.pos] === '\t' || this.text[this.pos] === ',')
      this.pos++;
  }

  private token(): string {
    const start = this.pos;
    while (this.pos < this.text.length && TOKEN_CHAR.test(this.text[this.pos]!)) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /** An unquoted value: a token, possibly with `/`, `:` or trailing `=` as seen in real servers' realms. */
  private token68(): string {
    const start = this.pos;
    while (this.pos < this.text.length && /[^\s,]/.test(this.text[this.pos]!)) this.pos++;
    return this.text.slice(start, this.pos);
  }

  private quoted(): string {
    let value = '';
    this.pos++; // opening quote
    while (this.pos < this.text.length && this.text[this.pos] !== '"') {
      if (this.text[this.pos] === '\\' && this.pos + 1 < this.text.length) this.pos++;
      value += this.text[this.pos];
      this.pos++;
    }
    this.pos++; // closing quote
    return value;
  }
}
