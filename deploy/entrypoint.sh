#!/bin/sh
# The image's entry point: the first argument selects the process. `exec` replaces this shell,
# so the Python process is PID 1 and receives the container's SIGTERM itself.
set -eu
role="${1:-bot}"
[ "$#" -gt 0 ] && shift
case "$role" in
  bot) exec python -m bot "$@" ;;
  restate_app) exec python -m restate_app "$@" ;;
  register) exec python -m restate_app.registration "$@" ;;
  *)
    echo "usage: entrypoint bot | restate_app | register" >&2
    exit 64
    ;;
esac
