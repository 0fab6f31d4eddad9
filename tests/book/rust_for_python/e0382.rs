use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

pub fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    stream.write_all(b"ok\n")?;
    Ok(())
}
