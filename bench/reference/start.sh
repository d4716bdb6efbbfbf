#!/bin/sh
# Configure and start the reference servers (Postfix + Dovecot) for
# bench/compare.py, from a private directory, on loopback only:
#   Postfix SMTP 127.0.0.1:$REF_SMTP_PORT (2625), Dovecot IMAP
#   127.0.0.1:$REF_IMAP_PORT (1143), POP3 127.0.0.1:$REF_POP3_PORT (1110).
# Two virtual domains, 200 users (user0..user99 in each), one password
# ($REF_PASSWORD), virtual(8) Maildir delivery under $REF_DIR/mail, Dovecot
# passwd-file auth (ARGON2ID, like mailyard's argon2id) + static userdb.
# Mail belongs to the system user "mail" (uid/gid 8). stop.sh ends exactly
# the two master processes started here (by their pid files).
set -eu
REF_DIR=${REF_DIR:-/var/tmp/mailyard-ref}
REF_SMTP_PORT=${REF_SMTP_PORT:-2625}
REF_IMAP_PORT=${REF_IMAP_PORT:-1143}
REF_POP3_PORT=${REF_POP3_PORT:-1110}
REF_PASSWORD=${REF_PASSWORD:-bench password}
here=$(cd "$(dirname "$0")" && pwd)
uid=$(id -u mail)
gid=$(id -g mail)

if [ -e "$REF_DIR/dovecot-run/master.pid" ] || [ -e "$REF_DIR/postfix-spool/pid/master.pid" ]; then
    "$here/stop.sh"
fi
mkdir -p "$REF_DIR/postfix" "$REF_DIR/postfix-data" "$REF_DIR/postfix-spool" \
         "$REF_DIR/dovecot" "$REF_DIR/dovecot-state" "$REF_DIR/mail"
chown "$uid:$gid" "$REF_DIR/mail"
chown postfix "$REF_DIR/postfix-data"

fill() {
    sed -e "s|@REF@|$REF_DIR|g" -e "s|@UID@|$uid|g" -e "s|@GID@|$gid|g" \
        -e "s|@SMTP_ADDR@|127.0.0.1:$REF_SMTP_PORT|g" \
        -e "s|@IMAP_PORT@|$REF_IMAP_PORT|g" -e "s|@POP3_PORT@|$REF_POP3_PORT|g" "$1"
}
fill "$here/templates/main.cf.in" > "$REF_DIR/postfix/main.cf"
fill "$here/templates/master.cf.in" > "$REF_DIR/postfix/master.cf"
fill "$here/templates/dovecot.conf.in" > "$REF_DIR/dovecot/dovecot.conf"

hash=$(doveadm pw -s ARGON2ID -p "$REF_PASSWORD")
: > "$REF_DIR/postfix/vmailbox"
: > "$REF_DIR/dovecot/passwd"
for domain in bench-one.test bench-two.test; do
    i=0
    while [ $i -lt 100 ]; do
        echo "user$i@$domain $domain/user$i/" >> "$REF_DIR/postfix/vmailbox"
        echo "user$i@$domain:$hash" >> "$REF_DIR/dovecot/passwd"
        i=$((i + 1))
    done
done
chmod 640 "$REF_DIR/dovecot/passwd"
chgrp dovecot "$REF_DIR/dovecot/passwd"

postfix -c "$REF_DIR/postfix" check
postfix -c "$REF_DIR/postfix" start
dovecot -c "$REF_DIR/dovecot/dovecot.conf"
echo "reference started in $REF_DIR: smtp 127.0.0.1:$REF_SMTP_PORT imap 127.0.0.1:$REF_IMAP_PORT pop3 127.0.0.1:$REF_POP3_PORT"
echo "postfix master pid $(cat "$REF_DIR/postfix-spool/pid/master.pid" | tr -d ' ')," \
     "dovecot master pid $(cat "$REF_DIR/dovecot-run/master.pid")"
