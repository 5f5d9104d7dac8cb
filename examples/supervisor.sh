#!/usr/bin/env sh
# Make any program highly available on one host: run this same line on every node (or in
# several terminals). The command runs only on the primary; when it stops, crashes or is
# killed, another node starts it within milliseconds.
#
#   sh examples/supervisor.sh
exec npx failover-watch run --endpoint "${ENDPOINT:-ipc://@supervised-http}" --interval 500 --timeout 2000 \
  -- node -e "require('http').createServer((q, r) => r.end('served by ' + process.pid + '\n')).listen(${PORT:-8080}, '127.0.0.1')"
