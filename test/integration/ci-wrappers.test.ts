/**
 * The GitHub actions (actions/) and the GitLab template (gitlab/) are thin wrappers over shared scripts;
 * here the scripts run for real against a registry, and the YAML is checked for consistency (every input
 * used is declared, every script referenced exists).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type FixtureImage, makeImageLayout } from '../harness/fixtures.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

let registry: TestRegistry;
let work: string;
let image: FixtureImage;

beforeAll(async () => {
  registry = await startRegistry({ auth: 'htpasswd' });
  work = await mkdtemp(join(tmpdir(), 'gantry-wrappers-'));
  image = await makeImageLayout({ dir: join(work, 'image'), tag: 'v1', layers: 1, layerSize: 4096 });
});

afterAll(async () => {
  await registry?.stop();
});

function scriptEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env.PATH}`, CI: 'true', ...extra };
}

describe('action scripts', () => {
  it('login stores credentials in a job-local auth file; copy uses it and outputs the digest', async () => {
    const githubEnv = join(work, 'github-env');
    const githubOutput = join(work, 'github-output');
    const authfile = join(work, 'job-auth.json');
    await writeFile(githubEnv, '');
    await writeFile(githubOutput, '');
    await run('bash', [join(ROOT, 'actions/login/run.sh')], {
      env: scriptEnv({
        GANTRY_REGISTRY: registry.host,
        GANTRY_USERNAME: registry.username!,
        GANTRY_PASSWORD: registry.password!,
        REGISTRY_AUTH_FILE: authfile,
        GITHUB_ENV: githubEnv,
      }),
    });
    expect(await readFile(githubEnv, 'utf8')).toContain(`REGISTRY_AUTH_FILE=${authfile}`);
    await run('bash', [join(ROOT, 'actions/copy/run.sh')], {
      env: scriptEnv({
        GANTRY_SOURCE: `oci:${image.layoutDir}:v1`,
        GANTRY_DESTINATION: `docker://${registry.host}/actions/app:v1`,
        REGISTRY_AUTH_FILE: authfile,
        GITHUB_OUTPUT: githubOutput,
      }),
    });
    expect(await readFile(githubOutput, 'utf8')).toBe(`digest=${image.digest}\n`);
  });

  it('sync writes its JSON report to the outputs and fails the step when an image fails', async () => {
    const githubOutput = join(work, 'sync-output');
    await writeFile(githubOutput, '');
    const authfile = join(work, 'job-auth.json');
    const env = scriptEnv({
      GANTRY_SOURCE: `docker://${registry.host}/actions/app`,
      GANTRY_DESTINATION: `docker://${registry.host}/mirror`,
      REGISTRY_AUTH_FILE: authfile,
      GITHUB_OUTPUT: githubOutput,
    });
    await run('bash', [join(ROOT, 'actions/sync/run.sh')], { env });
    const output = await readFile(githubOutput, 'utf8');
    const report = JSON.parse(output.split('\n').slice(1, -2).join('\n')) as { copied: number };
    expect(report.copied).toBe(1);
    await expect(
      run('bash', [join(ROOT, 'actions/sync/run.sh')], {
        env: { ...env, GANTRY_SOURCE: `docker://${registry.host}/actions/app:missing` },
      }),
    ).rejects.toThrow();
  });
});

describe('wrapper definitions', () => {
  it.each(['copy', 'sync', 'login'])('actions/%s/action.yml declares every input it uses', async (name) => {
    const text = await readFile(join(ROOT, 'actions', name, 'action.yml'), 'utf8');
    const action = parse(text) as { inputs: Record<string, unknown>; runs: { using: string } };
    expect(action.runs.using).toBe('composite');
    const used = [...text.matchAll(/inputs\.([a-z-]+)/g)].map((m) => m[1]);
    for (const input of used) expect(Object.keys(action.inputs), `input ${input}`).toContain(input);
    expect(existsSync(join(ROOT, 'actions', name, 'run.sh'))).toBe(true);
  });

  it('the GitLab template parses and runs scripts that exist', async () => {
    const text = await readFile(join(ROOT, 'gitlab', 'gantry.gitlab-ci.yml'), 'utf8');
    const jobs = parse(text) as Record<string, { script?: string[]; extends?: string }>;
    expect(Object.keys(jobs)).toEqual(expect.arrayContaining(['.gantry', '.gantry-copy', '.gantry-sync']));
    for (const match of text.matchAll(/\/opt\/gantry\/(actions\/[\w/.-]+\.sh)/g)) {
      expect(existsSync(join(ROOT, match[1]!)), match[1]).toBe(true);
    }
  });
});
