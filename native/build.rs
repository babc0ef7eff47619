// Emits the linker flags a Node-API addon needs (symbols resolved from the node binary at load time).
fn main() {
  napi_build::setup();
}
