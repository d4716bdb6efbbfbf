#!/bin/sh
# Stop the reference instances start.sh started, and only them: Postfix
# through its own config directory, Dovecot by the pid in its private
# base_dir. Other Postfix or Dovecot instances on the machine are untouched.
set -u
REF_DIR=${REF_DIR:-/var/tmp/mailyard-ref}
if [ -e "$REF_DIR/postfix-spool/pid/master.pid" ]; then
    postfix -c "$REF_DIR/postfix" stop || true
fi
pidfile="$REF_DIR/dovecot-run/master.pid"
if [ -e "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    fi
    rm -f "$pidfile"
fi
echo "reference stopped ($REF_DIR)"
