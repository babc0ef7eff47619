// Bundled in place of undici's HTTP/2 client (lib/dispatcher/client-h2.js). gantry's agents set allowH2: false,
// so ALPN offers only http/1.1 and undici never calls this; leaving the real module in would load node:http2 at
// every start (~10 ms) for nothing.
module.exports = function connectH2() {
  throw new Error('gantry bundles undici without HTTP/2; allowH2 must stay false');
};
