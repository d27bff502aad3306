#!/bin/bash
# What the official image's entrypoint does for the compose file: as root, own the data
# directory (and the Erlang cookie, if one was placed there), then run the server as rabbitmq.
set -euo pipefail
if [ "${1:-}" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    [ -f /var/lib/rabbitmq/.erlang.cookie ] && chmod 400 /var/lib/rabbitmq/.erlang.cookie
    shift
    exec runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
