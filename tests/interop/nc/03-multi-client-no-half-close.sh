# Lesson 3 without -N: the `ok`s come at once; nc exits when the server's idle timeout closes the connection.
printf 'hello\nfrom nc\n' | nc 127.0.0.1 "${PORT:-7890}"
