# Shared by start.sh and stop.sh (sourced).

# A process is alive if it exists and is not a zombie (the daemons' double fork leaves
# zombies behind where nothing reaps them, and those look alive to kill -0).
alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}
