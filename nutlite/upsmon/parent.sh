# nutlite upsmon's privileged parent, in POSIX sh (run with /bin/sh; see nutlite/upsmon/parent.py).
#
# Right after its fork, upsmon's root process becomes this script:
#     /bin/sh parent.sh CHILD PROG SYSLOG MAGIC SHUTDOWNCMD POWERDOWNFLAG
# with the read end of the pipe from the monitoring child CHILD as standard input. SYSLOG is 1 to log
# to syslog (else to standard error); MAGIC is what POWERDOWNFLAG gets (parent.py's); SHUTDOWNCMD and
# POWERDOWNFLAG may be empty.
#
# The parent does one thing for the child: on the line "shutdown" it writes POWERDOWNFLAG and runs
# SHUTDOWNCMD (once). It passes TERM, INT, HUP and USR1 on to the child. The child's last line is
# "exit N"; when the pipe closes (the child has exited) the parent exits with N, or with 1 if the
# child died without saying (a signal). A shell holds a few hundred KiB where a Python interpreter
# held 4 MiB.

case ${1-} in ''|*[!0-9]*) bad=1 ;; *) bad= ;; esac
if [ $# -ne 6 ] || [ -n "$bad" ] || [ -z "$4" ]; then
    echo "upsmon parent: started by upsmon, not by hand (CHILD PROG SYSLOG MAGIC SHUTDOWNCMD POWERDOWNFLAG)" >&2
    exit 2
fi
child=$1 prog=${2:-upsmon} syslog=$3 magic=$4 shutdowncmd=$5 flag=$6

say() {  # say LEVEL TEXT (LEVEL: info, err or crit)
    if [ "$syslog" = 1 ] && logger -t "$prog" --id=$$ -p "daemon.$1" -- "$2" 2>/dev/null; then
        return
    fi
    printf '%s[%s]: %s\n' "$prog" "$$" "$2" >&2
}

write_flag() {  # upsmon's marker, synced to disk: the power may go any moment
    [ -n "$flag" ] || return 0
    why=$( { umask 022; printf '%s' "$magic" >"$flag"; } 2>&1 ) || {
        say err "cannot write POWERDOWNFLAG $flag: ${why##*: }"
        return 0
    }
    sync "$flag" 2>/dev/null || say err "POWERDOWNFLAG $flag written but not synced to disk"
    say info "POWERDOWNFLAG $flag written"
}

run_shutdowncmd() {  # through the shell, as NUT does, and wait for it
    if [ -z "$shutdowncmd" ]; then
        say err "no SHUTDOWNCMD in upsmon.conf: this system cannot be shut down"
        return
    fi
    say crit "running SHUTDOWNCMD: $shutdowncmd"
    /bin/sh -c "$shutdowncmd" </dev/null
    rc=$?
    [ "$rc" -eq 0 ] || say err "SHUTDOWNCMD '$shutdowncmd' exited with status $rc"
}

forward() {
    interrupted=1
    kill -s "$1" "$child" 2>/dev/null
}
for sig in TERM INT HUP USR1; do
    trap "forward $sig" "$sig"
done
trap '' USR2 PIPE

done=0 code=
while :; do
    interrupted=
    if IFS= read -r line; then
        case $line in
            shutdown)
                if [ "$done" = 0 ]; then
                    done=1
                    write_flag
                    run_shutdowncmd
                fi ;;
            "exit "[0-9] | "exit "[0-9][0-9] | "exit "[0-9][0-9][0-9]) code=${line#exit } ;;
            *) say err "parent: unexpected message '$line' from the monitoring process ignored" ;;
        esac
    elif [ -z "$interrupted" ]; then
        break  # end of the pipe: the child has exited (a trapped signal also ends a read: go on then)
    fi
done

[ "$done" = 1 ] && exit 0
if [ -z "$code" ]; then  # (dash reaps exited children itself, so the kernel's status is lost to us)
    say err "parent: the monitoring process ended without reporting its status (killed by a signal?)"
    exit 1
fi
[ "$code" -eq 0 ] || say err "parent: the monitoring process exited with status $code"
exit "$code"
