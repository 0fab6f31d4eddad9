# Lesson 4: ask the server where alice listens for direct connections.
printf 'HELLO nc\nWHERE alice\nBYE\n' | nc -N 127.0.0.1 "${PORT:-7788}"
