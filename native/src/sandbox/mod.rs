//! The sandbox: everything the gantry-sandbox helper does. `run` is the helper's side of one container,
//! `init` is the container's PID 1, `probe` reports what the kernel allows, `owners` applies the
//! ownership an unprivileged unpack could only record. See native/README.md.
pub mod events;
pub mod idmap;
pub mod init;
pub mod layer;
pub mod mounts;
pub mod owners;
pub mod probe;
pub mod rootfs;
pub mod run;
pub mod spec;
pub mod sys;
