//! gantry-native: Rust helpers for gantry, exposed to Node through Node-API (napi-rs).
//! Work runs on libuv's thread pool via `AsyncTask` so the JavaScript thread never blocks on I/O or hashing.
#![deny(unsafe_code)]

mod digest;
mod layer;
