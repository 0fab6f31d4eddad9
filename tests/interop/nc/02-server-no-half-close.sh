# Lesson 2 without -N: nc never half-closes, but the newline ends the
# message, and the server's close after `OK` ends nc.
printf 'hello from nc\n' | nc 127.0.0.1 "${PORT:-7890}"
