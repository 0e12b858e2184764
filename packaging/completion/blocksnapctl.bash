# bash completion for blocksnapctl(8)                          -*- shell-script -*-

# Names of existing volumes (or snapshot ids), asked from the daemon; nothing if it is not
# reachable.
_blocksnapctl_names()
{
    local kind=$1 ctl=(blocksnapctl)
    [[ -n $_blocksnapctl_control ]] && ctl+=(--control "$_blocksnapctl_control")
    "${ctl[@]}" --json "$kind" list 2>/dev/null |
        command sed -n 's/.*"'"$2"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

_blocksnapctl()
{
    local cur prev words cword
    _init_completion || return

    local i group="" cmd="" _blocksnapctl_control=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --control) _blocksnapctl_control=${words[i + 1]}; ((i++)) ;;
            --control=*) _blocksnapctl_control=${words[i]#--control=} ;;
            -*) ;;
            *)
                if [[ -z $group ]]; then
                    group=${words[i]}
                elif [[ -z $cmd ]]; then
                    cmd=${words[i]}
                fi
                ;;
        esac
    done

    case $prev in
        --control)
            _filedir
            return
            ;;
        --size | --chunk-size | --tag | --days | --untag | --schedule)
            return
            ;;
        --from-snapshot)
            COMPREPLY=($(compgen -W "$(_blocksnapctl_names snapshot id)" -- "$cur"))
            return
            ;;
    esac

    if [[ -z $group ]]; then
        COMPREPLY=($(compgen -W "volume snapshot policy --control --json --help --version" \
            -- "$cur"))
        return
    fi

    if [[ -z $cmd ]]; then
        case $group in
            volume) COMPREPLY=($(compgen -W "create list show delete tag untag" -- "$cur")) ;;
            snapshot) COMPREPLY=($(compgen -W \
                "create list show delete tag lock unlock dump verify diff" -- "$cur")) ;;
            policy) COMPREPLY=($(compgen -W "list show validate plan run reload" -- "$cur")) ;;
        esac
        return
    fi

    local opts=""
    case $group/$cmd in
        volume/create) opts="--size --chunk-size --tag --from-snapshot --hydrate" ;;
        volume/delete) opts="--force" ;;
        volume/tag) opts="--untag" ;;
        snapshot/create) opts="--tag --wait" ;;
        snapshot/tag) opts="--untag" ;;
        policy/run) opts="--schedule" ;;
        policy/plan) opts="--days" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
        return
    fi
    case $group/$cmd in
        volume/show | volume/delete | volume/tag | volume/untag | snapshot/create | snapshot/list)
            COMPREPLY=($(compgen -W "$(_blocksnapctl_names volume name)" -- "$cur"))
            ;;
        snapshot/show | snapshot/delete | snapshot/diff | snapshot/tag | snapshot/verify | \
            snapshot/lock | snapshot/unlock)
            COMPREPLY=($(compgen -W "$(_blocksnapctl_names snapshot id)" -- "$cur"))
            ;;
        snapshot/dump)  # ID, then FILE (or - for stdout)
            if [[ ${words[cword - 1]} == dump ]]; then
                COMPREPLY=($(compgen -W "$(_blocksnapctl_names snapshot id)" -- "$cur"))
            else
                _filedir
            fi
            ;;
        policy/show | policy/run)
            COMPREPLY=($(compgen -W "$(_blocksnapctl_names policy name)" -- "$cur"))
            ;;
        policy/validate)
            _filedir 'yaml'
            ;;
    esac
} &&
    complete -F _blocksnapctl blocksnapctl

# ex: filetype=sh
