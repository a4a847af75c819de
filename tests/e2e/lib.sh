# Shell helpers shared by the end-to-end topology scripts (sourced, not run).

# Whether process $1 is alive and its command line still names $2 (a stale
# pid may belong to someone else by now). An exited daemon stays a zombie
# until init reaps it, which can take seconds here: its command line is empty,
# so it counts as gone.
named() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q -- "$2"; }

# Stops the process whose pid file is $1 and command line names $2, then
# waits for it (5 s, then SIGKILL).
stop_pid() {
    local f=$1 name=$2 pid
    [ -s "$f" ] || return 0
    pid=$(cat "$f")
    named "$pid" "$name" || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        named "$pid" "$name" || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}
