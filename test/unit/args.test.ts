// Table-driven tests for the CLI flag parser: value forms, booleans, repeatable flags, `--`, and usage errors.
import { describe, expect, it } from 'vitest';
import { type FlagSpecs, formatFlagHelp, parseArgs } from '../../src/cli/args.js';
import { GantryError } from '../../src/errors/index.js';

const specs = {
  all: { type: 'boolean', short: 'a', description: 'copy all' },
  'tls-verify': { type: 'boolean', description: 'verify TLS' },
  format: { type: 'string', short: 'f', description: 'format', valueName: 'FORMAT' },
  'additional-tag': { type: 'string', multiple: true, description: 'extra tag' },
} satisfies FlagSpecs;

describe('parseArgs: good inputs', () => {
  const cases: [string[], Record<string, unknown>, string[]][] = [
    [[], {}, []],
    [['src', 'dst'], {}, ['src', 'dst']],
    [['--all', 'src'], { all: true }, ['src']],
    [['--all=true'], { all: true }, []],
    [['--tls-verify=false', 'a'], { 'tls-verify': false }, ['a']],
    [['-a', 'x'], { all: true }, ['x']],
    [['--format', 'oci', 'x'], { format: 'oci' }, ['x']],
    [['--format=v2s2'], { format: 'v2s2' }, []],
    [['--format='], { format: '' }, []],
    // The value after `=` may itself contain '='.
    [['--format=a=b'], { format: 'a=b' }, []],
    [['-f', 'oci'], { format: 'oci' }, []],
    // A string flag takes the next word even when it starts with '-', like pflag.
    [['--format', '-weird'], { format: '-weird' }, []],
    [['--format', 'oci', '--format', 'v2s2'], { format: 'v2s2' }, []],
    [['--additional-tag', 'a', 'src', '--additional-tag=b'], { 'additional-tag': ['a', 'b'] }, ['src']],
    [['--all', '--', '--format', '-a'], { all: true }, ['--format', '-a']],
    [['--'], {}, []],
    // A lone '-' is a positional (conventionally stdin/stdout).
    [['-'], {}, ['-']],
  ];
  it.each(cases)('%j', (argv, flags, positionals) => {
    expect(parseArgs(argv, specs)).toEqual({ flags, positionals });
  });
});

describe('parseArgs: bad inputs', () => {
  const cases: [string[], string][] = [
    [['--nope'], '--nope'],
    [['--nope=1'], '--nope'],
    [['-z'], '-z'],
    [['--format'], '--format needs a value'],
    [['src', '-f'], '--format needs a value'],
    [['--all=yes'], '--all takes true or false, not "yes"'],
    [['--tls-verify=0'], '--tls-verify takes true or false'],
    // Short flags cannot be bundled or take inline values; silently treating them as positionals hid typos.
    [['-af'], '-af'],
    [['-f=oci'], '-f=oci'],
  ];
  it.each(cases)('%j is rejected naming %s', (argv, why) => {
    let caught: unknown;
    try {
      parseArgs(argv, specs);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GantryError);
    expect((caught as GantryError).code).toBe('INVALID_ARGUMENT');
    expect((caught as GantryError).message).toContain(why);
  });
});

describe('formatFlagHelp', () => {
  it('lists every flag with its short form and value name', () => {
    const lines = formatFlagHelp(specs).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^ {2}-a, --all +copy all$/);
    expect(lines[1]).toMatch(/^ {6}--tls-verify +verify TLS$/);
    expect(lines[2]).toMatch(/^ {2}-f, --format FORMAT +format$/);
    expect(lines[3]).toMatch(/^ {6}--additional-tag VALUE +extra tag$/);
  });
});
