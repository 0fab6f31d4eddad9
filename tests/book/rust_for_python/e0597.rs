use std::net::{TcpListener, TcpStream};
use std::thread;

pub struct Slot;
pub struct ClientLimit;
impl ClientLimit {
    pub fn try_take(&self) -> Option<Slot> {
        Some(Slot)
    }
}
fn handle(_stream: TcpStream) {}

pub fn serve(listener: TcpListener, limit: ClientLimit) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        let Some(slot) = limit.try_take() else { continue };
        let held = &slot;
        thread::spawn(move || {
            let _slot = held;
            handle(stream);
        });
    }
}
