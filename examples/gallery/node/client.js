// A Node.js client for netkit's gallery: connect, socket.setKeepAlive(true, DELAY_MS), wait.
//
//   usage: node client.js HOST PORT DELAY_MS
//
// libuv (since 1.35, as Node 14+ bundles or Debian links) sets TCP_KEEPIDLE to the
// delay, and TCP_KEEPINTVL 1 s and TCP_KEEPCNT 10 whatever the system's settings:
// the dead server is noticed DELAY + 1 x 10 s after the last segment.
const net = require('net');

const [host, port, delayMs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const started = Date.now();
const socket = net.connect({ host, port }, () => {
  socket.setKeepAlive(true, delayMs);
  console.log('connected');
});
socket.on('error', (error) => {
  console.log(`error after ${(Date.now() - started) / 1000} s: ${error.code}`);
  process.exit(1);
});
socket.on('close', () => process.exit(1));
