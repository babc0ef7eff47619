//! gantry-sandbox: the namespace helper `gantry run` spawns (see native/README.md, "Process model").
//! `gantry-sandbox run SPEC_FILE` runs one container (the JSON spec is read from a file so it does not
//! show in the container's /proc/1/cmdline); `gantry-sandbox probe DIR` reports what the kernel allows;
//! `own`/`remove SPEC_FILE` apply recorded layer ownership / delete a tree inside a user namespace;
//! `layer SPEC_FILE` writes a layer blob from a changes directory inside one (exact owners, every file readable).
//! It stays single-threaded: unshare/clone with CLONE_NEWUSER needs that, and it makes fork safe.
#[path = "../sandbox/mod.rs"]
mod sandbox;

/// The addon's layer writer (native/src/layer), without its Node bindings, for `layer`. Unpacking comes
/// along because the writer shares its types; the helper does not call it.
#[path = "../layer"]
#[allow(dead_code)]
mod layer {
  pub mod create;
  mod error;
  mod fsat;
  mod path;
  mod pgzip;
  mod stream;
  mod tarw;
  pub mod unpack;
}

fn main() {
  let args: Vec<String> = std::env::args().collect();
  let code = match args.get(1).map(String::as_str) {
    Some("run") if args.len() == 3 => sandbox::run::main(&args[2]),
    Some("probe") if args.len() == 3 => sandbox::probe::main(&args[2]),
    Some("own") if args.len() == 3 => sandbox::owners::main(&args[2], sandbox::owners::Action::Own),
    Some("remove") if args.len() == 3 => sandbox::owners::main(&args[2], sandbox::owners::Action::Remove),
    Some("layer") if args.len() == 3 => sandbox::layer::main(&args[2]),
    _ => {
      eprintln!("usage: gantry-sandbox run SPEC_FILE | probe SCRATCH_DIR | own SPEC_FILE | remove SPEC_FILE | layer SPEC_FILE");
      2
    }
  };
  std::process::exit(code);
}
