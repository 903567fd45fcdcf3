# postfix-lib.sh - run a private Postfix instance for a test (sourced by
# POSIX sh scripts).  Each instance lives under its own DIR:
#
#   DIR/etc      main.cf and master.cf (its config_directory)
#   DIR/spool    its queue_directory (pid, sockets, queues)
#   DIR/data     its data_directory
#   DIR/maillog  its log (maillog_file; no syslog needed)
#
# It listens on 127.0.0.1:PORT only, never touches /etc/postfix/main.cf,
# master.cf, port 25 or the system's queue, and several instances (with
# different DIR and PORT) can run at the same time.  Must run as root (Postfix
# starts as root and drops to the postfix user).  Every function returns
# non-zero on failure and says why on stderr.
#
# Typical use:
#   . tests/mail/postfix-lib.sh
#   pf=$tmp/pf
#   trap 'pf_stop "$pf"; rm -rf "$tmp"' EXIT
#   pf_setup "$pf" 2526 || exit 1
#   pf_conf "$pf" relay_domains=picos.test \
#       'transport_maps=inline:{ picos.test=discard: }'
#   pf_start "$pf" || exit 1
#   swaks --server 127.0.0.1:2526 ...
#   pf_wait_empty "$pf" 30 || echo "mail still queued"
#   grep 'status=sent' "$(pf_log "$pf")"
#
# alternate_config_directories: Postfix's commands insist that a
# non-default configuration directory be listed there in the default
# main.cf only when run by a non-root user (mail_conf_checkdir is skipped
# for euid 0).  These functions run as root, so they work whether
# /etc/postfix/main.cf is missing, empty or configured, and never edit it.
# pf_flush still falls back to postkick(1) should postqueue refuse.

# _pf_die MESSAGE - complain on stderr and fail
_pf_die() {
    echo "postfix-lib: $*" >&2
    return 1
}

# _pf_postconf DIR ARGS... - postconf(1) on the instance in DIR
_pf_postconf() {
    _pf_d=$1; shift
    postconf -c "$_pf_d/etc" "$@"
}

# pf_setup DIR PORT - create a fresh instance in DIR (made if missing; it
# must not hold another instance) whose smtpd listens on 127.0.0.1:PORT.
# Settings: compatibility_level 3.6, inet_protocols ipv4, mynetworks
# 127.0.0.0/8, mydestination empty (nothing is delivered locally), no
# aliases, relayhost empty, SMTPUTF8 on, chroot off for every service,
# retries of deferred mail within a second or two (minimal_backoff_time 1s,
# maximal_backoff_time 2s, queue_run_delay 1s), syslog_name postfix-PORT,
# maillog_file DIR/maillog.  Change any of these with pf_conf afterwards.
# DIR's parent directories must be searchable by the postfix user (mktemp -d
# directories under /tmp are fine: pf_setup opens DIR itself to 0755).
pf_setup() {
    _pf_d=$1; _pf_port=$2
    [ -n "$_pf_d" ] && [ -n "$_pf_port" ] || _pf_die "usage: pf_setup DIR PORT" || return 1
    case $_pf_d in
    /*) ;;
    *) _pf_d=$(pwd)/$_pf_d ;;
    esac
    [ "$(id -u)" -eq 0 ] || _pf_die "pf_setup must run as root" || return 1
    command -v postconf >/dev/null 2>&1 || _pf_die "postfix is not installed" || return 1
    mkdir -p "$_pf_d/etc" "$_pf_d/spool" "$_pf_d/data" || return 1
    chmod 755 "$_pf_d" "$_pf_d/etc" "$_pf_d/spool" || return 1
    # the postfix user owns its data directory (post-install checks that)
    chown postfix:postfix "$_pf_d/data" && chmod 700 "$_pf_d/data" || return 1

    # master.cf: the packaged one (any local edits of /etc/postfix are
    # ignored on purpose: start from the distribution file when we have it)
    _pf_master=
    for _pf_f in /usr/share/postfix/master.cf.dist /etc/postfix/master.cf.proto \
                 /etc/postfix/master.cf; do
        if [ -s "$_pf_f" ]; then _pf_master=$_pf_f; break; fi
    done
    [ -n "$_pf_master" ] || _pf_die "no master.cf to start from" || return 1
    cp "$_pf_master" "$_pf_d/etc/master.cf" || return 1
    : > "$_pf_d/etc/main.cf" || return 1

    _pf_postconf "$_pf_d" -e \
        "compatibility_level = 3.6" \
        "queue_directory = $_pf_d/spool" \
        "data_directory = $_pf_d/data" \
        "maillog_file = $_pf_d/maillog" \
        "maillog_file_prefixes = $_pf_d" \
        "syslog_name = postfix-$_pf_port" \
        "myhostname = localhost.localdomain" \
        "mydomain = localdomain" \
        "myorigin = \$myhostname" \
        "mydestination =" \
        "inet_interfaces = 127.0.0.1" \
        "inet_protocols = ipv4" \
        "mynetworks = 127.0.0.0/8" \
        "relayhost =" \
        "relay_domains =" \
        "alias_maps =" \
        "alias_database =" \
        "local_recipient_maps =" \
        "biff = no" \
        "smtputf8_enable = yes" \
        "smtpd_peername_lookup = no" \
        "in_flow_delay = 0s" \
        "minimal_backoff_time = 1s" \
        "maximal_backoff_time = 2s" \
        "queue_run_delay = 1s" \
        "delay_warning_time = 0h" \
        || return 1

    # smtpd on 127.0.0.1:PORT instead of *:25; no chroot anywhere (the
    # queue directory then needs no copies of /etc files)
    _pf_postconf "$_pf_d" -MX smtp/inet || return 1
    _pf_postconf "$_pf_d" -M \
        "127.0.0.1:$_pf_port/inet = 127.0.0.1:$_pf_port inet n - n - - smtpd" \
        || return 1
    _pf_postconf "$_pf_d" -F '*/*/chroot = n' || return 1

    # the queue directories (post-install makes them with the right owners)
    postfix -c "$_pf_d/etc" set-permissions >/dev/null 2>&1
    postfix -c "$_pf_d/etc" check || _pf_die "postfix check failed for $_pf_d" || return 1
    : > "$_pf_d/maillog"
}

# pf_conf DIR KEY=VALUE... - set main.cf parameters of the instance
# (postconf -e); takes effect at pf_start, or at once when running
# (postfix reload)
pf_conf() {
    _pf_d=$1; shift
    _pf_postconf "$_pf_d" -e "$@" || return 1
    if postfix -c "$_pf_d/etc" status >/dev/null 2>&1; then
        postfix -c "$_pf_d/etc" reload >/dev/null 2>&1 || return 1
    fi
}

# pf_master DIR LINE - append LINE to the instance's master.cf: a service
# entry, with "-o name=value" continuation lines if needed, e.g.
#   pf_master "$pf" 'picoslmtp unix - - n - - lmtp
#     -o lmtp_send_xforward_command=yes'
# (the first column must not clash with an existing service)
pf_master() {
    _pf_d=$1
    printf '%s\n' "$2" >> "$_pf_d/etc/master.cf" || return 1
    if postfix -c "$_pf_d/etc" status >/dev/null 2>&1; then
        postfix -c "$_pf_d/etc" reload >/dev/null 2>&1 || return 1
    fi
}

# pf_start DIR - start the instance; returns once its listeners are open
# (postfix start waits for the master to initialise)
pf_start() {
    _pf_d=$1
    postfix -c "$_pf_d/etc" check || _pf_die "postfix check failed for $_pf_d" || return 1
    if ! postfix -c "$_pf_d/etc" start >"$_pf_d/start.out" 2>&1; then
        cat "$_pf_d/start.out" >&2
        _pf_die "postfix did not start in $_pf_d (see $_pf_d/maillog)"
        return 1
    fi
}

# pf_stop DIR - stop the instance and wait (10 s at most) for its master to
# exit; does nothing when it is not running or DIR holds no instance, so it
# is safe to call twice and from traps
pf_stop() {
    _pf_d=$1
    [ -f "$_pf_d/etc/main.cf" ] || return 0
    postfix -c "$_pf_d/etc" status >/dev/null 2>&1 || return 0
    postfix -c "$_pf_d/etc" stop >/dev/null 2>&1
    _pf_n=0
    while postfix -c "$_pf_d/etc" status >/dev/null 2>&1; do
        _pf_n=$((_pf_n + 1))
        if [ "$_pf_n" -ge 100 ]; then
            postfix -c "$_pf_d/etc" abort >/dev/null 2>&1
            return 1
        fi
        sleep 0.1
    done
    return 0
}

# pf_flush DIR - try every deferred message now: postqueue -f, or when
# that refuses the directory, the same request sent with postkick (flush
# dead sites, rescan all, deferred and incoming queues)
pf_flush() {
    _pf_d=$1
    postqueue -c "$_pf_d/etc" -f 2>/dev/null ||
        postkick -c "$_pf_d/etc" public qmgr FADI
}

# pf_queued DIR - print the number of messages in the instance's incoming,
# active, deferred and maildrop queues (the hold queue is not counted:
# held mail never leaves by itself)
pf_queued() {
    _pf_d=$1
    find "$_pf_d/spool/incoming" "$_pf_d/spool/active" \
         "$_pf_d/spool/deferred" "$_pf_d/spool/maildrop" -type f 2>/dev/null |
        wc -l | tr -d ' '
}

# pf_wait_empty DIR SECONDS - wait until pf_queued is 0, flushing now and
# then; non-zero (and the queue listed on stderr) when SECONDS pass first
pf_wait_empty() {
    _pf_d=$1; _pf_end=$(( $(date +%s) + ${2:-30} ))
    _pf_n=0
    while [ "$(pf_queued "$_pf_d")" -ne 0 ]; do
        if [ "$(date +%s)" -ge "$_pf_end" ]; then
            echo "postfix-lib: queue of $_pf_d not empty:" >&2
            find "$_pf_d/spool/incoming" "$_pf_d/spool/active" \
                 "$_pf_d/spool/deferred" "$_pf_d/spool/maildrop" -type f >&2
            return 1
        fi
        _pf_n=$((_pf_n + 1))
        [ $((_pf_n % 10)) -eq 0 ] && pf_flush "$_pf_d" >/dev/null 2>&1
        sleep 0.1
    done
    return 0
}

# pf_log DIR - print the path of the instance's maillog
pf_log() {
    printf '%s\n' "$1/maillog"
}
