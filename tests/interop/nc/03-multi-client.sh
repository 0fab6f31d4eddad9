# Lesson 3: two lines, two `ok`s; -N half-closes so the server closes too.
printf 'hello\nfrom nc\n' | nc -N 127.0.0.1 "${PORT:-7890}"
