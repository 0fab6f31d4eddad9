# Lesson 5: `OK <count>`, then one `<size> <path>` line per file.
printf 'LIST\n' | nc -N 127.0.0.1 "${PORT:-7799}"
