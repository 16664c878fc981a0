#!/bin/sh
# govflow container entrypoint.
#
#   serve [--workers N ...]   migrate the database, then serve the API (the default)
#   worker                    migrate the database, then run the job worker (timers, SLA)
#   migrate                   migrate and exit (the Kubernetes migration Job)
#   anything else             passed to `govflow` (validate, run, seed-demo, ...)
#
# `govflow migrate` is safe to run from every replica at once: it takes a PostgreSQL advisory
# lock, so one replica applies and the others find the database up to date. Set
# MIGRATE_ON_START=0 where a separate step migrates (Kubernetes: the govflow-migrate Job).
# `exec` hands PID 1 to govflow, so SIGTERM reaches it and it stops gracefully.
set -eu

command="${1:-serve}"
[ "$#" -gt 0 ] && shift

migrate_first() {
    if [ "${MIGRATE_ON_START:-1}" != "0" ]; then
        govflow migrate
    fi
}

case "$command" in
    serve)
        migrate_first
        exec govflow serve "$@"
        ;;
    worker)
        migrate_first
        exec govflow worker "$@"
        ;;
    migrate)
        exec govflow migrate "$@"
        ;;
    *)
        exec govflow "$command" "$@"
        ;;
esac
