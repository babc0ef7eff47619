// Tests for the sync YAML parser (errors name the file and key), tag selection and CI sharding.
import { describe, expect, it } from 'vitest';
import { parseShard, selectTags, shardOf } from '../../src/sync/config.js';
import { parseSyncYaml } from '../../src/sync/yaml.js';
import { thrown } from '../support/thrown.js';

describe('parseSyncYaml', () => {
  it('reads images, regex and semver selectors with per-registry settings', () => {
    const yaml = [
      'registry.example.com:',
      '  tls-verify: false',
      '  cert-dir: /etc/certs',
      '  credentials:',
      '    username: u',
      '    password: p',
      '  images:',
      '    busybox: ["1.36", latest]',
      '    all/of/it: []',
      '    nulls:',
      '  images-by-tag-regex:',
      '    app: ^v1\\.',
      '  images-by-semver:',
      '    lib: ">=1.2 <2"',
      '127.0.0.1:5000:',
      '  images:',
      '    x: [a]',
    ].join('\n');
    const repos = parseSyncYaml(yaml, 'sync.yaml');
    const common = {
      registry: 'registry.example.com',
      tlsVerify: false,
      certDir: '/etc/certs',
      credentials: { username: 'u', password: 'p' },
    };
    expect(repos).toEqual([
      { ...common, repository: 'busybox', selector: { kind: 'list', tags: ['1.36', 'latest'] } },
      { ...common, repository: 'all/of/it', selector: { kind: 'all' } },
      { ...common, repository: 'nulls', selector: { kind: 'all' } },
      { ...common, repository: 'app', selector: { kind: 'regex', pattern: /^v1\./ } },
      { ...common, repository: 'lib', selector: { kind: 'semver', range: '>=1.2 <2' } },
      { registry: '127.0.0.1:5000', repository: 'x', selector: { kind: 'list', tags: ['a'] } },
    ]);
  });

  it('reads tls-verify: true', () => {
    expect(parseSyncYaml('r.io:\n  tls-verify: true\n  images:\n    a: [b]\n', 'f')[0]?.tlsVerify).toBe(true);
  });

  it('returns nothing for a registry without images', () => {
    expect(parseSyncYaml('r.io: {}\n', 'f')).toEqual([]);
  });

  const bad: [string, string, string[]][] = [
    ['not YAML', 'r.io: [unclosed\n', ['not valid YAML']],
    ['a list at the top', '- a\n- b\n', ['expected a map of registries']],
    ['a scalar at the top', 'hello\n', ['expected a map of registries']],
    ['an empty document', '', ['expected a map of registries']],
    ['a registry that is not a map', 'r.io: 3\n', ['registry r.io: expected a map']],
    ['an unknown key', 'r.io:\n  image: {}\n', ['registry r.io', 'unknown key "image"']],
    ['tags that are not a list', 'r.io:\n  images:\n    app: latest\n', ['images.app', 'list of tags']],
    ['a tag that is not a string', 'r.io:\n  images:\n    app: [{a: 1}]\n', ['images.app']],
    [
      'a regex that is not a string',
      'r.io:\n  images-by-tag-regex:\n    app: [x]\n',
      ['images-by-tag-regex.app'],
    ],
    ['a broken regex', 'r.io:\n  images-by-tag-regex:\n    app: "(["\n', ['images-by-tag-regex.app']],
    [
      'a broken semver range',
      'r.io:\n  images-by-semver:\n    app: "not a range"\n',
      ['images-by-semver.app', '"not a range"'],
    ],
    [
      'credentials without password',
      'r.io:\n  credentials:\n    username: u\n',
      ['registry r.io', 'credentials'],
    ],
    ['tls-verify that is not a boolean', 'r.io:\n  tls-verify: "false"\n', ['registry r.io', 'tls-verify']],
    ['an invalid repository name', 'r.io:\n  images:\n    Bad/Name: []\n', ['images.Bad/Name', '"Bad"']],
  ];
  it.each(bad)('rejects %s, naming the file and the key', (_what, yaml, fragments) => {
    const err = thrown(() => parseSyncYaml(yaml, '/etc/gantry/sync.yaml'));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.subject).toBe('/etc/gantry/sync.yaml');
    expect(err.message.startsWith('/etc/gantry/sync.yaml: ')).toBe(true);
    for (const f of fragments) expect(err.message).toContain(f);
  });

  it('does not put credentials into error messages', () => {
    const err = thrown(() => parseSyncYaml('r.io:\n  credentials:\n    password: hunter2\n', 'f.yaml'));
    expect(err.message).not.toContain('hunter2');
  });
});

describe('selectTags', () => {
  const available = [
    'latest',
    '1.0.0',
    '1.2.0',
    '1.2.3',
    'v1.9.9',
    '2.0.0',
    '1.3.0-rc.1',
    '3.12',
    'v1-beta',
    'sha256-abc.sig',
  ];
  const cases: [string, Parameters<typeof selectTags>[0], string[]][] = [
    ['all', { kind: 'all' }, available],
    // Explicit lists are kept as written, even for absent tags, so a missing tag fails the copy later.
    ['list', { kind: 'list', tags: ['missing', 'latest'] }, ['missing', 'latest']],
    ['regex (unanchored, like Go regexp)', { kind: 'regex', pattern: /^v1/ }, ['v1.9.9', 'v1-beta']],
    ['regex inside', { kind: 'regex', pattern: /\.2\./ }, ['1.2.0', '1.2.3']],
    ['semver range', { kind: 'semver', range: '>=1.2 <2' }, ['1.2.0', '1.2.3', 'v1.9.9']],
    ['semver caret', { kind: 'semver', range: '^1.0.0' }, ['1.0.0', '1.2.0', '1.2.3', 'v1.9.9']],
    // Pre-releases only match ranges that name them, as in semver.
    ['semver pre-release', { kind: 'semver', range: '>=1.3.0-rc.0 <1.4' }, ['1.3.0-rc.1']],
    // Non-semver tags (`latest`, `3.12`) never match, even a range that would accept everything.
    ['semver star', { kind: 'semver', range: '*' }, ['1.0.0', '1.2.0', '1.2.3', 'v1.9.9', '2.0.0']],
  ];
  it.each(cases)('%s', (_name, selector, want) => {
    expect(selectTags(selector, available)).toEqual(want);
  });

  it('does not return the caller’s array', () => {
    const result = selectTags({ kind: 'all' }, available);
    expect(result).not.toBe(available);
  });
});

describe('shardOf', () => {
  it('is stable: the same key always lands in the same shard', () => {
    for (const key of ['docker.io/library/busybox:latest', 'r.io/a:b', '']) {
      const first = shardOf(key, 7);
      for (let i = 0; i < 5; i++) expect(shardOf(key, 7)).toBe(first);
    }
    // Pinned values (32-bit FNV-1a): CI jobs running different gantry versions must agree on the split.
    expect([shardOf('a', 4), shardOf('b', 4), shardOf('r.io/app:v1', 4)]).toEqual([0, 1, 0]);
    expect(shardOf('docker.io/library/busybox:latest', 4)).toBe(1);
  });

  it('returns a shard in range and puts everything in shard 0 when n=1', () => {
    for (let i = 0; i < 200; i++) {
      const s = shardOf(`key-${i}`, 3);
      expect(Number.isInteger(s) && s >= 0 && s < 3).toBe(true);
      expect(shardOf(`key-${i}`, 1)).toBe(0);
    }
  });

  it('spreads 1000 image keys over 4 shards with 15–35% each', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) {
      const shard = shardOf(`registry.example.com/team-${i % 17}/app-${i}:v${i % 5}`, 4);
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    for (const c of counts) {
      expect(c).toBeGreaterThanOrEqual(150);
      expect(c).toBeLessThanOrEqual(350);
    }
  });
});

describe('parseShard', () => {
  it.each([
    ['1/1', { index: 0, count: 1 }],
    ['1/4', { index: 0, count: 4 }],
    ['4/4', { index: 3, count: 4 }],
    ['12/20', { index: 11, count: 20 }],
  ])('%s', (text, want) => {
    expect(parseShard(text)).toEqual(want);
  });

  it.each(['0/4', '5/4', '1/0', '0/0', '-1/4', 'a/b', '1/4/2', '1', '', ' 1/4', '1.5/4'])(
    'rejects %j naming it',
    (text) => {
      const err = thrown(() => parseShard(text));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toContain(JSON.stringify(text));
      expect(err.message).toContain('--shard');
    },
  );
});
