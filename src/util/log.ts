/**
 * util/log: the logger gantry's library code writes to. Library code never prints; callers pass a Logger
 * (the CLI passes one that writes plain lines to stderr). The default is silent.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  debug() {},
};
