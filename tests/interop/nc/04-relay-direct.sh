# Lesson 4, no server in between: `HI <name>`, then lines, to the port from AT;
# each line is answered `OK`.
printf 'HI nc\nhello without the server\n' | nc -N 127.0.0.1 "${PORT:?set PORT to the port in the AT answer}"
