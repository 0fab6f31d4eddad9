use std::io::Read;
use std::net::TcpStream;

pub fn receive(stream: &TcpStream) -> std::io::Result<usize> {
    let mut buffer = [0u8; 1024];
    stream.read(&mut buffer)
}
