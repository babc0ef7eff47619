// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variables are written literally in these strings
import { describe, expect, it } from 'vitest';
import { ExpansionError, expandWord, expandWords, lexWord } from '../../src/dockerfile/index.js';

const vars = new Map([
  ['PWD', '/home'],
  ['EMPTY', ''],
  ['NAME', 'world'],
  ['STR', 'foobarbaz'],
  ['PATHV', '/usr/local/bin:/usr/bin'],
  ['SPACE', 'a  b'],
  ['KOREAN', '한국어'],
]);

describe('expandWord (BuildKit ProcessWord)', () => {
  const cases: [string, string][] = [
    ['hello', 'hello'],
    ['$NAME', 'world'],
    ['${NAME}', 'world'],
    ['hi-$NAME!', 'hi-world!'],
    ['${NAME}_x', 'world_x'],
    ['$NAME_x', ''],
    ['$UNSET', ''],
    ['a${UNSET}b', 'ab'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$.', '$.'],
    ['he$1x', 'hex'],
    ['$@$*$#', ''],
    ['\\$NAME', '$NAME'],
    ['\\${NAME}', '${NAME}'],
    ['\\\\$NAME', '\\world'],
    ['"$NAME"', 'world'],
    ["'$NAME'", '$NAME'],
    ['"a \\"b\\" c"', 'a "b" c'],
    ['"\\$NAME"', '$NAME'],
    ['"\\n"', '\\n'],
    ["'\\n'", '\\n'],
    ['\\n', 'n'],
    ['a\\ b', 'a b'],
    ["he'll'o", 'hello'],
    ['"hel\'lo"', "hel'lo"],
    ['trailing\\', 'trailing'],
    ['${UNSET:-default}', 'default'],
    ['${EMPTY:-default}', 'default'],
    ['${EMPTY-default}', ''],
    ['${UNSET-default}', 'default'],
    ['${NAME:-default}', 'world'],
    ['${NAME:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${UNSET:-$NAME}', 'world'],
    ['${UNSET:-${ALSO:-deep}}', 'deep'],
    ['${UNSET:-a b}', 'a b'],
    ['${NAME:?must be set}', 'world'],
    ['${EMPTY?msg}', ''],
    ['${STR#f*b}', 'arbaz'],
    ['${STR##f*b}', 'az'],
    ['${STR%b*}', 'foobar'],
    ['${STR%%b*}', 'foo'],
    ['${STR#nomatch}', 'foobarbaz'],
    ['${PATHV%%:*}', '/usr/local/bin'],
    ['${PATHV#*:}', '/usr/bin'],
    ['${STR/ba/fo}', 'fooforbaz'],
    ['${STR//ba/fo}', 'fooforfoz'],
    ['${STR/b?r/X}', 'fooXbaz'],
    ['${STR//a/$}', 'foob$rb$z'],
    ['${UNSET/a/b}', ''],
    ['${PATHV//\\//-}', '-usr-local-bin:-usr-bin'],
    ['${KOREAN}', '한국어'],
    ['${KOREAN%어}', '한국'],
    ['<<EOF', '<<EOF'],
    ['a<b', 'a<b'],
  ];
  it.each(cases)('%s → %s', (input, expected) => {
    expect(expandWord(input, vars)).toBe(expected);
  });

  const errors: [string, RegExp][] = [
    ["'open", /single-quote/],
    ['"open', /double-quote/],
    ['"open\\"', /double-quote/],
    ['${', /missing '}'/],
    ['${NAME', /missing '}'/],
    ['${}', /bad substitution/],
    ['${:x}', /bad substitution/],
    ['${{x}', /bad substitution/],
    ['${NAME:x}', /unsupported modifier \(:x\)/],
    ['${NAME:#x}', /unsupported modifier \(:#\)/],
    ['${NAME:-x', /missing '}'/],
    ['${UNSET:?}', /UNSET: is not allowed to be unset/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be empty/],
    ['${UNSET?custom $NAME}', /UNSET: custom world/],
    ['${STR/a}', /missing '\/'/],
    ['${STR#\\x}', /invalid escape/],
  ];
  it.each(errors)('%s fails', (input, message) => {
    expect(() => expandWord(input, vars)).toThrow(ExpansionError);
    expect(() => expandWord(input, vars)).toThrow(message);
  });

  it('names the word that failed', () => {
    expect(() => expandWord('x${', vars)).toThrow(/failed to process "x\$\{"/);
  });
});

describe('escape directive (backtick)', () => {
  const opts = { escape: '`' };
  const cases: [string, string][] = [
    ['`$NAME', '$NAME'],
    ['C:\\path\\$NAME', 'C:\\path\\world'],
    ['"a `"q`" b"', 'a "q" b'],
    ['a` b', 'a b'],
    ['``', '`'],
  ];
  it.each(cases)('%s → %s', (input, expected) => {
    expect(expandWord(input, vars, opts)).toBe(expected);
  });
});

describe('expandWords (BuildKit ProcessWords)', () => {
  const cases: [string, string[]][] = [
    ['80 443', ['80', '443']],
    ['$SPACE', ['a', 'b']],
    ['"$SPACE"', ['a  b']],
    ['x${SPACE}y', ['xa', 'by']],
    ['a\\ b c', ['a b', 'c']],
    ['"" x', ['x']],
    ['${UNSET} 8080/tcp', ['8080/tcp']],
  ];
  it.each(cases)('%s → %j', (input, expected) => {
    expect(expandWords(input, vars)).toEqual(expected);
  });
});

describe('lexWord matches', () => {
  it('reports which variables were set and which were not', () => {
    const r = lexWord('$NAME ${UNSET:-x} ${EMPTY}', vars);
    expect([...r.matched].sort()).toEqual(['EMPTY', 'NAME']);
    expect([...r.unmatched]).toEqual(['UNSET']);
  });

  it('keeps unset references, quotes and escapes when asked (heredoc detection)', () => {
    const r = lexWord('RUN "<<EOF" \\x $UNSET ${UNSET:-d}', vars, {
      rawQuotes: true,
      rawEscapes: true,
      skipUnset: true,
    });
    expect(r.words).toEqual(['RUN', '"<<EOF"', '\\x', '$UNSET', '${UNSET:-d}']);
  });

  it('treats quotes literally with skipQuotes (COPY heredoc bodies)', () => {
    expect(lexWord(`echo "$NAME" '$NAME'\n`, vars, { skipQuotes: true }).value).toBe(
      `echo "world" 'world'\n`,
    );
  });
});
