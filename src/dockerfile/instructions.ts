/**
 * dockerfile/instructions: the typed, readonly instruction IR, one type per Dockerfile instruction. Values are
 * kept as written (quotes and variables unexpanded) except where BuildKit resolves them at parse time; the
 * builder expands them per step with `expandInstruction` against the stage's variables.
 */
import type { Platform } from '../oci/index.js';
import type { ChmodSpec } from './chmod.js';
import type { RunMount } from './mount.js';
import type { Heredoc } from './source.js';

/** Where an instruction starts (1-based) and the last line it covers, heredoc bodies included. */
export interface Location {
  file: string;
  line: number;
  column: number;
  endLine: number;
}

interface Base {
  location: Location;
  /** The instruction as BuildKit prints it in history (the joined line, trimmed). */
  original: string;
}

/** Shell form (`RUN make`) keeps the raw line for the shell; exec form (`RUN ["make"]`) an argv. */
export interface CommandLine {
  form: 'shell' | 'exec';
  args: readonly string[];
  /** Heredoc bodies (`RUN <<EOF`), in order. */
  files: readonly Heredoc[];
}

/** `FROM [--platform=<p>] <image> [AS <name>]` */
export interface FromInstruction extends Base {
  kind: 'FROM';
  image: string;
  platform?: string;
  /** The stage name, lowercased as BuildKit does. */
  name?: string;
}

export interface ArgDefinition {
  key: string;
  /** The default as written; absent for `ARG name`. */
  value?: string;
}

/** `ARG <name>[=<default>] ...` */
export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: readonly ArgDefinition[];
}

export interface KeyValue {
  key: string;
  value: string;
  /** Legacy `ENV key value` form (one pair, value is the rest of the line). */
  legacy: boolean;
}

/** `ENV key=value ...` or legacy `ENV key value` */
export interface EnvInstruction extends Base {
  kind: 'ENV';
  pairs: readonly KeyValue[];
}

/** `LABEL key=value ...` */
export interface LabelInstruction extends Base {
  kind: 'LABEL';
  pairs: readonly KeyValue[];
}

/** One `--mount` flag as written; `mount` is filled at parse time when the value uses no variables. */
export interface MountFlag {
  text: string;
  /** `from=` (never expanded: BuildKit requires a literal stage or image name). */
  from?: string;
  mount?: RunMount;
}

/** `RUN [--mount=...] [--network=...] [--security=...] <command>` */
export interface RunInstruction extends Base {
  kind: 'RUN';
  command: CommandLine;
  mounts: readonly MountFlag[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  /** `--device` values (CDI device names), as written. */
  devices: readonly string[];
}

interface CopyBase extends Base {
  sources: readonly string[];
  /** Heredoc sources (`COPY <<EOF /dst`): `name` is the file name, `expand` says whether to expand the body. */
  inline: readonly Heredoc[];
  dest: string;
  chown?: string;
  /** Raw --chmod value; `chmodSpec` is set when it has no variables. */
  chmod?: string;
  chmodSpec?: ChmodSpec;
  link: boolean;
  excludes: readonly string[];
}

/** `COPY [--from=] [--chown=] [--chmod=] [--link] [--parents] [--exclude=]... <src>... <dest>` */
export interface CopyInstruction extends CopyBase {
  kind: 'COPY';
  from?: string;
  parents: boolean;
}

/** `ADD [--chown=] [--chmod=] [--link] [--checksum=] [--keep-git-dir] [--unpack] [--exclude=]... <src>... <dest>` */
export interface AddInstruction extends CopyBase {
  kind: 'ADD';
  checksum?: string;
  keepGitDir?: boolean;
  unpack?: boolean;
}

/** `WORKDIR <path>` */
export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}

/** `USER <user>[:<group>]` */
export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}

/** `CMD ["exe", "arg"]` or `CMD command line` */
export interface CmdInstruction extends Base {
  kind: 'CMD';
  command: CommandLine;
}

/** `ENTRYPOINT ["exe", "arg"]` or `ENTRYPOINT command line` */
export interface EntrypointInstruction extends Base {
  kind: 'ENTRYPOINT';
  command: CommandLine;
}

/** `SHELL ["exe", "arg"]` (exec form only) */
export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: readonly string[];
}

/** `EXPOSE <port>[/<proto>] ...` */
export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  ports: readonly string[];
}

/** `VOLUME ["/a", "/b"]` or `VOLUME /a /b` */
export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  volumes: readonly string[];
}

/** `STOPSIGNAL <signal>` */
export interface StopsignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}

/** Durations are nanoseconds, as in the image config; 0 means "use the default". */
export interface HealthConfig {
  test: readonly string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

/** `HEALTHCHECK [--interval= --timeout= --start-period= --start-interval= --retries=] CMD ...` or `HEALTHCHECK NONE` */
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  /** `test` is `["NONE"]` for HEALTHCHECK NONE. */
  health: HealthConfig;
}

/** `ONBUILD <instruction>`: `expression` is what goes into the image config; `trigger` is it parsed. */
export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  expression: string;
  trigger: Instruction;
}

/** `MAINTAINER <name>` (deprecated: becomes the config's author) */
export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export type Instruction =
  | ArgInstruction
  | EnvInstruction
  | LabelInstruction
  | RunInstruction
  | CopyInstruction
  | AddInstruction
  | WorkdirInstruction
  | UserInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | ExposeInstruction
  | VolumeInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

/** What a stage starts from, after global ARGs were substituted into the FROM line. */
export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'stage'; index: number }
  | { kind: 'image'; ref: string };

export interface Stage {
  index: number;
  name?: string;
  from: FromInstruction;
  /** The FROM image after substitution. */
  baseName: string;
  base: StageBase;
  /** The FROM --platform after substitution, when given. */
  platform?: Platform;
  instructions: readonly Instruction[];
}

export interface Warning {
  location: Location;
  /** BuildKit's check name, e.g. `MaintainerDeprecated`. */
  rule: string;
  message: string;
}
