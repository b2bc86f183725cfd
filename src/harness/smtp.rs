//! A minimal SMTP server for the chaos harness: it refuses connections (is down) for a while, then accepts mail and
//! counts the messages it was given. Enough of RFC 5321 for lettre: greeting, EHLO, MAIL, RCPT, DATA, RSET, QUIT.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

pub struct SmtpSink {
    pub port: u16,
    received: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Listens after `down_for`: until then, connections are refused as by a server that is down. The port is bound
    /// at once, so nothing else is given it meanwhile (a port merely chosen was once handed to one of the nodes,
    /// whose HTTP server then took every node's mail and answered none of it).
    pub fn start(down_for: Duration) -> std::io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let port = socket.local_addr()?.port();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(down_for).await;
            let Ok(listener) = socket.listen(1024) else { return };
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, counter.clone()));
            }
        });
        Ok(Self { port, received, task })
    }

    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, received: Arc<AtomicUsize>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 chaos-smtp ready\r\n").await.is_err() {
        return;
    }
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        let reply: &[u8] = if in_data {
            if line != "." {
                continue;
            }
            in_data = false;
            received.fetch_add(1, Ordering::Relaxed);
            b"250 queued\r\n"
        } else {
            match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                Some("EHLO") => b"250-chaos-smtp\r\n250 8BITMIME\r\n",
                Some("DATA") => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                Some("QUIT") => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 ok\r\n",
            }
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
