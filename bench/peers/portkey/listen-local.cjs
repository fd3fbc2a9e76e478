// Preloaded with `node --require` so that the Portkey gateway (which listens on
// every interface) binds only to 127.0.0.1 (or $BENCH_LISTEN_HOST).
'use strict';
const net = require('net');
const host = process.env.BENCH_LISTEN_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !('fd' in first) && !('_handle' in first)) {
    args[0] = { ...first, host };
    return listen.apply(this, args);
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    const cb = args.find((a) => typeof a === 'function');
    return listen.call(this, { port: Number(first), host }, cb);
  }
  return listen.apply(this, args);
};
