# Lesson 2: one line to the one-shot server; -N half-closes after it.
printf 'hello from nc\n' | nc -N 127.0.0.1 "${PORT:-7890}"
