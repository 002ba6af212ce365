#!/bin/sh
# Prints the command of the Python to build the virtualenv with: 3.12 if this machine has it
# (on PATH, or through pyenv), else python3. Used by the Makefile.
for candidate in python3.12 "env PYENV_VERSION=3.12.1 python3.12"; do
    if $candidate -c 'import sys' >/dev/null 2>&1; then
        exec $candidate -c 'import sys; print(sys.executable)'
    fi
done
command -v python3
