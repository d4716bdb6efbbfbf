#!/bin/sh
# Install the reference servers (Postfix, Dovecot imapd + pop3d) from Debian's
# packages without letting the packages start their default instances: a
# policy-rc.d that refuses every start is in place for the install only, and
# Postfix is preseeded as "No configuration" (no /etc/postfix/main.cf, so
# nothing listens on port 25). The benchmark instances are configured and
# started by start.sh, from their own private directories, on loopback only.
set -eu
if command -v postfix >/dev/null 2>&1 && command -v dovecot >/dev/null 2>&1; then
    echo "postfix and dovecot already installed"
    exit 0
fi
policy=/usr/sbin/policy-rc.d
had_policy=no
if [ -e "$policy" ]; then
    had_policy=yes
    cp -p "$policy" "$policy.mailyard-bench"
fi
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod 755 "$policy"
restore() {
    if [ "$had_policy" = yes ]; then
        mv "$policy.mailyard-bench" "$policy"
    else
        rm -f "$policy"
    fi
}
trap restore EXIT
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postfix dovecot-imapd dovecot-pop3d
postconf -d mail_version | sed 's/^/installed: postfix /'
dovecot --version | sed 's/^/installed: dovecot /'
