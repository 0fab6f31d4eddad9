# Lesson 4: register as nc, ask who is here, relay a line to alice, leave.
printf 'HELLO nc\nLIST\nSEND alice hi from nc\nBYE\n' | nc -N 127.0.0.1 "${PORT:-7788}"
