# Lesson 5: the header line `OK <size>`, the file's bytes, then `SHA256 <hex>`.
printf 'GET hello.txt\n' | nc -N 127.0.0.1 "${PORT:-7799}"
