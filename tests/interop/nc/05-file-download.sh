# Lesson 5: the header line `OK <size> <sha256>`, then the file's bytes.
printf 'GET hello.txt\n' | nc -N 127.0.0.1 "${PORT:-7788}"
