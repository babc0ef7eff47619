//! The sandbox: everything the gantry-sandbox helper does. `run` is the helper's side of one container,
//! `init` is the container's PID 1, `probe` reports what the kernel allows. See native/README.md.
pub mod events;
pub mod idmap;
pub mod init;
pub mod mounts;
pub mod probe;
pub mod rootfs;
pub mod run;
pub mod spec;
pub mod sys;
